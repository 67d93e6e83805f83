"""Real photographs, captioned in plain words, for evaluating encoders on the real world (never for training).

The photographs ship with scikit-image (``skimage.data``) and scikit-learn (``load_sample_images``); nobody here
made them. Beside them, four held-out views of the NeRF-synthetic *lego* scene (``i % 8 == 0``) when its folder is
given. Each image has one caption; an encoder is scored by top-1 retrieval of the right caption among all of the
set's captions (18 distinct ones). The captions were written before any model was run on the photos.

:func:`conse_scores` is the ConSE baseline (Norouzi et al., 2014) on the backbone's ImageNet classifier: an image is
the convex combination of its top-10 classes' name embeddings (MiniLM, "a photo of a {name}."), compared by cosine
with the caption's embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from langfield.encoders.base import Encoder
from langfield.errors import LangfieldError

# (source, name, caption): source "skimage" (skimage.data.<name>), "sklearn" (load_sample_images, by file name)
PHOTOS: tuple[tuple[str, str, str], ...] = (
    ("skimage", "chelsea", "a cat"),
    ("skimage", "coffee", "a cup of coffee"),
    ("skimage", "astronaut", "an astronaut"),
    ("skimage", "rocket", "a rocket"),
    ("skimage", "motorcycle", "a motorcycle"),
    ("skimage", "camera", "a man with a camera"),
    ("skimage", "horse", "a horse"),
    ("skimage", "clock", "a clock"),
    ("skimage", "coins", "coins"),
    ("skimage", "brick", "a brick wall"),
    ("skimage", "grass", "grass"),
    ("skimage", "gravel", "gravel"),
    ("skimage", "moon", "the surface of the moon"),
    ("skimage", "hubble_deep_field", "galaxies in space"),
    ("skimage", "page", "a page of text"),
    ("sklearn", "china.jpg", "a temple"),
    ("sklearn", "flower.jpg", "a flower"),
)
LEGO_VIEWS = (0, 8, 16, 24)
LEGO_CAPTION = "a toy bulldozer"


@dataclass
class Photo:
    name: str
    image: torch.Tensor  # (H, W, 3) float in [0, 1]
    caption: str


def _as_rgb(array: np.ndarray) -> torch.Tensor:
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    return torch.from_numpy(np.array(array[..., :3], dtype=np.float32)) / 255.0


def _skimage(name: str) -> np.ndarray:
    from skimage import data

    if name == "motorcycle":
        return data.stereo_motorcycle()[0]
    return np.asarray(getattr(data, name)())


def _sklearn(name: str) -> np.ndarray:
    from sklearn.datasets import load_sample_images

    images = load_sample_images()
    return images.images[[Path(f).name for f in images.filenames].index(name)]


def load_photos(lego: Path | None = None) -> list[Photo]:
    """The captioned photographs, and lego's held-out views composited over white when ``lego`` is its folder."""
    photos = [
        Photo(name, _as_rgb(_skimage(name) if source == "skimage" else _sklearn(name)), caption)
        for source, name, caption in PHOTOS
    ]
    if lego is not None:
        from langfield.export.images import read_image

        for i in LEGO_VIEWS:
            path = Path(lego) / "train" / f"r_{i}.png"
            if not path.is_file():
                raise LangfieldError(f"lego view not found: {path} (give the NeRF-synthetic lego folder)")
            photos.append(Photo(f"lego r_{i}", read_image(path), LEGO_CAPTION))
    return photos


def captions_of(photos: list[Photo]) -> list[str]:
    return list(dict.fromkeys(p.caption for p in photos))


def ranking(scores: torch.Tensor, photos: list[Photo], captions: list[str], top: int = 3) -> dict:
    """Top-1 accuracy and each photo's best captions from an (images, captions) score matrix."""
    order = scores.argsort(dim=1, descending=True)
    rows = []
    for photo, row, values in zip(photos, order, scores):
        best = [(captions[int(j)], round(float(values[j]), 4)) for j in row[:top]]
        rows.append(
            {"photo": photo.name, "caption": photo.caption, "top": best, "correct": best[0][0] == photo.caption}
        )
    return {
        "images": len(photos),
        "captions": len(captions),
        "top1": sum(r["correct"] for r in rows) / len(rows),
        "photos": rows,
    }


def encoder_scores(encoder: Encoder, photos: list[Photo], captions: list[str]) -> torch.Tensor:
    with torch.no_grad():
        images = torch.cat([encoder.encode_image(p.image.to(encoder.device)) for p in photos])
        return images @ encoder.encode_text(captions).T


def conse_scores(
    photos: list[Photo],
    captions: list[str],
    backbone: str = "efficientnet-lite0",
    top: int = 10,
    input_size: int | None = None,
) -> torch.Tensor:
    """The ConSE baseline's (images, captions) cosine scores (the backbone's classifier + MiniLM, nothing trained)."""
    from langfield.encoders.efficientnet import EfficientNetEncoder, imagenet_classes
    from langfield.encoders.minilm import MiniLM
    from langfield.encoders.vision import class_name_prompts, conse_targets

    classifier = EfficientNetEncoder(backbone, input_size)
    text = MiniLM()
    with torch.no_grad():
        names = F.normalize(text(class_name_prompts(imagenet_classes())), dim=-1)
        weights = torch.cat([conse_targets(classifier.imagenet_probabilities(p.image), top) for p in photos])
        images = F.normalize(weights @ names, dim=-1)
        return images @ F.normalize(text(captions), dim=-1).T
