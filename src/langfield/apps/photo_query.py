"""Text queries on one photograph — where in it is "a cup of coffee"? — with LERF's relevancy and no 3D field.

The photo is cut into the square crops of a multi-scale pyramid (:mod:`langfield.methods.lerf.pyramid`: the crops
LERF distils into its field), each crop is embedded by the encoder, and every pixel gets, per scale, the embedding
interpolated between the nearest crop centres. Relevancy against the canonical phrases, the smoothing and the
choice of scale are those of a query on a lerf run (:mod:`langfield.methods.lerf.query`).

    from langfield.apps.photo_query import query_photo
    answer = query_photo(read_image("photo.jpg", max_side=512), ["a cat"], load_encoder("langfield-vision"))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch.nn import functional as F

from langfield.encoders.base import Encoder
from langfield.errors import LangfieldError
from langfield.methods.lerf.config import CANONICAL_PHRASES
from langfield.methods.lerf.pyramid import PyramidSettings, build_pyramid
from langfield.methods.lerf.query import best_scales, relevancy, smooth

#: crop sides tried, as fractions of the photo's height: things in photos are larger than in a scene's views
PHOTO_FRACTIONS = (0.2, 0.3, 0.45, 0.65)
#: photos are queried at most this large (longer side, pixels): the crops are shrunk to the encoder's input anyway
PHOTO_MAX_SIDE = 512
#: Gaussian blur of the maps, as a fraction of the photo's height (a lerf query's default)
PHOTO_SMOOTHING = 0.02
#: pixels whose embeddings are interpolated at once (each reads four crop embeddings)
CHUNK = 16384


@dataclass
class PhotoAnswer:
    texts: list[str]
    relevancy: torch.Tensor  # (Q, H, W) at the chosen scale of each query
    fractions: torch.Tensor  # (Q,) chosen crop fraction
    best_pixel: torch.Tensor  # (Q, 2) (x, y)
    rgb: torch.Tensor  # (H, W, 3)


def query_photo(
    image: torch.Tensor,
    texts: Sequence[str],
    encoder: Encoder,
    canonical: Sequence[str] = CANONICAL_PHRASES,
    fractions: Sequence[float] = PHOTO_FRACTIONS,
    stride: float = 0.5,
    smoothing: float = PHOTO_SMOOTHING,
    progress: bool = True,
) -> PhotoAnswer:
    """Relevancy maps of ``texts`` over ``image`` (H, W, 3) in [0, 1]."""
    texts = [t.strip() for t in texts]
    if not texts or not all(texts):
        raise LangfieldError(f"query text must be non-empty, got {list(texts)!r}")
    if not canonical or not all(c.strip() for c in canonical):
        raise LangfieldError("canonical phrases must be non-empty")
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise LangfieldError(f"query scales must be fractions of the image height in (0, 1], got {tuple(fractions)}")
    h, w = image.shape[:2]
    settings = PyramidSettings(tuple(sorted(fractions)), stride)
    pyramid = build_pyramid(image[None].to(encoder.device), encoder, settings, progress)
    with torch.no_grad():
        queries = F.normalize(encoder.encode_text(texts).float().cpu(), dim=-1)
        negatives = F.normalize(encoder.encode_text([c.strip() for c in canonical]).float().cpu(), dim=-1)
    pixels = torch.arange(h * w)
    views = torch.zeros_like(pixels)

    def maps_at(fraction: float) -> torch.Tensor:
        parts = []
        for start in range(0, h * w, CHUNK):
            chunk = pixels[start : start + CHUNK]
            at = torch.full(chunk.shape, fraction)
            embeddings = F.normalize(pyramid.target(views[: len(chunk)], chunk, at), dim=-1)
            parts.append(relevancy(embeddings, queries, negatives))
        maps = torch.cat(parts, dim=1)  # (Q, H*W)
        return smooth(maps.reshape(-1, h, w), smoothing * h).reshape(len(texts), -1)

    with torch.no_grad():
        best_maps, best_fraction = best_scales(maps_at, settings.fractions)
    flat = best_maps.argmax(dim=1)
    best_pixel = torch.stack([flat % w, torch.div(flat, w, rounding_mode="floor")], dim=-1)
    return PhotoAnswer(texts, best_maps.reshape(-1, h, w), best_fraction, best_pixel, image.float().cpu())
