"""LERF's supervision: a multi-scale pyramid of encoder embeddings of square crops of every training image, and
dense (DINO-style) features, computed once with a progress bar and cached on disk.

Level ``i`` holds crops whose side is ``fractions[i]`` of the image height, centred on a regular lattice with a
stride of ``stride`` × side (0.5: neighbouring crops overlap by half). A training ray at pixel (x, y) with crop
fraction ``f`` gets the embedding interpolated bilinearly between the four nearest crop centres of the two levels
around ``f``, then linearly between those levels.

The cache key is a hash of the training images, the encoders' weights and every setting, so a change of any of
them computes a new pyramid instead of reusing a stale one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from langfield.encoders.base import Encoder
from langfield.tensorfile import load_cache, save_cache


def default_cache_dir() -> Path:
    return Path(os.environ.get("LANGFIELD_CACHE", Path.home() / ".cache" / "langfield")) / "lerf"


def fingerprint(encoder: Encoder) -> str:
    digest = hashlib.sha256(encoder.name.encode())
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass
class Level:
    fraction: float
    side: float  # crop side in pixels
    start: float  # first crop centre (pixels, both axes)
    step: float  # distance between crop centres (pixels)
    embeddings: torch.Tensor  # (N, gy, gx, D) float16

    def sample(self, views: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(R, D): bilinear interpolation between the four nearest crop centres (clamped at the border)."""
        n, gy, gx, d = self.embeddings.shape
        rows, weights = _bilinear(x, y, self.start, self.step, gx, gy)
        flat = self.embeddings.reshape(-1, d)
        base = (views * (gy * gx))[:, None]
        return (flat[base + rows].float() * weights[..., None]).sum(1)


def _bilinear(x: torch.Tensor, y: torch.Tensor, start, step, gx, gy) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (R, 4) into a (gy, gx) lattice of crop centres and their bilinear weights (R, 4), for pixel positions
    (x, y); ``start``/``step``/``gx``/``gy`` are numbers or per-ray tensors. Positions are clamped at the border."""
    gx, gy = torch.as_tensor(gx, device=x.device), torch.as_tensor(gy, device=x.device)
    u = torch.minimum(((x - start) / step).clamp(min=0), gx - 1)
    v = torch.minimum(((y - start) / step).clamp(min=0), gy - 1)
    u0 = torch.minimum(u.floor().long(), (gx - 2).clamp(min=0))
    v0 = torch.minimum(v.floor().long(), (gy - 2).clamp(min=0))
    u1, v1 = torch.minimum(u0 + 1, gx - 1), torch.minimum(v0 + 1, gy - 1)
    fu, fv = u - u0, v - v0
    rows = torch.stack([v0 * gx + u0, v0 * gx + u1, v1 * gx + u0, v1 * gx + u1], dim=-1)
    weights = torch.stack([(1 - fu) * (1 - fv), fu * (1 - fv), (1 - fu) * fv, fu * fv], dim=-1)
    return rows, weights


class CropPyramid:
    def __init__(self, levels: list[Level], width: int, height: int):
        self.levels = sorted(levels, key=lambda level: level.fraction)
        self.width, self.height = width, height
        self._index()

    def _index(self) -> None:
        """One flat table of every level's embeddings and per-level lattice geometry, so that a batch of rays at
        mixed scales is served by one gather (no loop over levels)."""
        device = self.levels[0].embeddings.device
        shapes = [level.embeddings.shape for level in self.levels]
        sizes = torch.tensor([s[0] * s[1] * s[2] for s in shapes])
        self.table = torch.cat([level.embeddings.reshape(-1, shapes[0][-1]) for level in self.levels])
        start = 0
        for level, shape in zip(self.levels, shapes):  # the levels become views of the table: one copy in memory
            level.embeddings = self.table[start : start + shape[0] * shape[1] * shape[2]].view(shape)
            start += shape[0] * shape[1] * shape[2]
        self.fractions = torch.tensor([level.fraction for level in self.levels], device=device)
        self.offset = (torch.cumsum(sizes, 0) - sizes).to(device)
        self.gy = torch.tensor([s[1] for s in shapes], device=device)
        self.gx = torch.tensor([s[2] for s in shapes], device=device)
        self.start = torch.tensor([level.start for level in self.levels], device=device)
        self.step = torch.tensor([level.step for level in self.levels], device=device)

    def to(self, device) -> "CropPyramid":
        for level in self.levels:
            level.embeddings = level.embeddings.to(device)
        self._index()
        return self

    def _sample(self, level: torch.Tensor, views: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gx, gy = self.gx[level], self.gy[level]
        rows, weights = _bilinear(x, y, self.start[level], self.step[level], gx, gy)
        rows = rows + (self.offset[level] + views * gx * gy)[:, None]
        return (self.table[rows].float() * weights[..., None]).sum(1)

    def target(self, views: torch.Tensor, pixels: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
        """(R, D) targets for rays through flat ``pixels`` of training ``views`` at crop ``fractions``."""
        x = (pixels % self.width).float() + 0.5
        y = torch.div(pixels, self.width, rounding_mode="floor").float() + 0.5
        if len(self.levels) == 1:  # single-scale supervision (an ablation)
            return self._sample(torch.zeros_like(views), views, x, y)
        f = fractions.clamp(float(self.fractions[0]), float(self.fractions[-1]))
        upper = torch.searchsorted(self.fractions, f).clamp(1, len(self.levels) - 1)
        lower = upper - 1
        w = ((f - self.fractions[lower]) / (self.fractions[upper] - self.fractions[lower]).clamp_min(1e-9)).unsqueeze(
            -1
        )
        return (1 - w) * self._sample(lower, views, x, y) + w * self._sample(upper, views, x, y)

    def state(self) -> dict:
        return {
            "width": self.width,
            "height": self.height,
            "levels": [
                {
                    "fraction": level.fraction,
                    "side": level.side,
                    "start": level.start,
                    "step": level.step,
                    "embeddings": level.embeddings.cpu(),
                }
                for level in self.levels
            ],
        }

    @staticmethod
    def from_state(state: dict) -> "CropPyramid":
        return CropPyramid([Level(**level) for level in state["levels"]], state["width"], state["height"])


def crop_lattice(length: int, side: float, stride: float) -> tuple[float, float, int]:
    """(first centre, step, count) of crop centres along an axis of ``length`` pixels."""
    if side >= length:
        return length / 2, 1.0, 1
    step = side * stride
    count = int((length - side) // step) + 1
    span = length - side
    step = span / (count - 1) if count > 1 else 1.0
    return side / 2, step, count


def encode_crops(images: torch.Tensor, encoder: Encoder, side: float, stride: float, batch: int, advance) -> Level:
    """Embeddings of every crop of one level for (N, H, W, 3) images."""
    n, height, width, _ = images.shape
    size = encoder.input_size
    start, step, gx = crop_lattice(width, side, stride)
    start_y, step_y, gy = crop_lattice(height, side, stride)
    cy, cx = torch.meshgrid(start_y + step_y * torch.arange(gy), start + step * torch.arange(gx), indexing="ij")
    centres = torch.stack([cx.flatten(), cy.flatten()], dim=-1)  # (gy*gx, 2) pixels
    # resample each image once so that a crop of `side` pixels becomes `size` pixels (antialiased when shrinking)
    scale = size / side
    nchw = images.permute(0, 3, 1, 2).float()
    scaled = F.interpolate(
        nchw,
        scale_factor=scale,
        mode="bilinear",
        align_corners=False,
        antialias=scale < 1,
        recompute_scale_factor=False,
    )
    sh, sw = scaled.shape[-2:]
    offsets = (torch.arange(size) + 0.5) - size / 2  # pixel centres of a crop, relative to its centre
    out = torch.empty(n, gy * gx, encoder.embed_dim, dtype=torch.float16)
    jobs = [(i, j) for i in range(n) for j in range(0, gy * gx, batch)]
    for i, j in jobs:
        c = centres[j : j + batch] * scale  # crop centres in the scaled image
        xs = (c[:, 0, None] + offsets[None]) / sw * 2 - 1
        ys = (c[:, 1, None] + offsets[None]) / sh * 2 - 1
        grid = torch.stack([xs[:, None, :].expand(-1, size, -1), ys[:, :, None].expand(-1, -1, size)], dim=-1)
        crops = F.grid_sample(
            scaled[i : i + 1].expand(len(c), -1, -1, -1),
            grid.to(scaled),
            mode="bilinear",
            padding_mode="border",
            align_corners=False,
        )
        with torch.no_grad():
            out[i, j : j + batch] = encoder.encode_image(crops.permute(0, 2, 3, 1)).to(torch.float16).cpu()
        advance(len(c))
    return Level(side / height, side, start, step, out.view(n, gy, gx, -1))


@dataclass(frozen=True)
class PyramidSettings:
    fractions: tuple[float, ...]
    stride: float


def build_pyramid(
    images: torch.Tensor, encoder: Encoder, settings: PyramidSettings, progress: bool = True
) -> CropPyramid:
    from langfield.ui import task_bar

    n, height, width, _ = images.shape
    sides = [max(2.0, f * height) for f in settings.fractions]
    total = 0
    for side in sides:
        total += n * crop_lattice(width, side, settings.stride)[2] * crop_lattice(height, side, settings.stride)[2]
    with task_bar(f"encoding {total:,} crops at {len(sides)} scales", total, progress) as advance:
        levels = [encode_crops(images, encoder, side, settings.stride, 256, advance) for side in sides]
    return CropPyramid(levels, width, height)


def dense_targets(images: torch.Tensor, encoder: Encoder, batch: int = 32) -> torch.Tensor:
    """(N, h, w, C) float16 dense features of whole images."""
    with torch.no_grad():
        return torch.cat(
            [
                encoder.dense_features(images[i : i + batch]).to(torch.float16).cpu()
                for i in range(0, len(images), batch)
            ]
        )


def sample_dense(
    features: torch.Tensor, views: torch.Tensor, pixels: torch.Tensor, width: int, height: int
) -> torch.Tensor:
    """(R, C): dense features bilinearly interpolated at pixel centres (features span the whole image)."""
    n, h, w, c = features.shape
    x = ((pixels % width).float() + 0.5) / width * w - 0.5
    y = (torch.div(pixels, width, rounding_mode="floor").float() + 0.5) / height * h - 0.5
    level = Level(0.0, 0.0, 0.0, 1.0, features)
    return level.sample(views, x, y)  # start 0, step 1: feature-cell coordinates


def cache_key(images: torch.Tensor, encoder: Encoder, dense_encoder: Encoder, settings: PyramidSettings) -> str:
    digest = hashlib.sha256(images.to(torch.float16).cpu().contiguous().view(torch.uint8).numpy().tobytes())
    digest.update(
        json.dumps(
            {
                "encoder": fingerprint(encoder),
                "dense": fingerprint(dense_encoder),
                "fractions": settings.fractions,
                "stride": settings.stride,
            }
        ).encode()
    )
    return digest.hexdigest()[:24]


def load_or_build(
    images: torch.Tensor,
    encoder: Encoder,
    dense_encoder: Encoder,
    settings: PyramidSettings,
    cache_dir: Path | None,
    progress: bool = True,
) -> tuple[CropPyramid, torch.Tensor, Path | None]:
    """The pyramid and dense features of ``images``, from the cache when its key matches."""
    from langfield.ui import console

    file = None
    if cache_dir is not None:
        file = Path(cache_dir) / f"{cache_key(images, encoder, dense_encoder, settings)}.pt"
        state = load_cache(file)
        if state is not None:
            try:
                pyramid = CropPyramid.from_state(state["pyramid"])
                console.print(f"language supervision: cached {file}")
                return pyramid, state["dense"], file
            except (KeyError, TypeError, ValueError):  # a cache of another layout is rebuilt, never trusted
                file.unlink(missing_ok=True)
    pyramid = build_pyramid(images, encoder, settings, progress)
    dense = dense_targets(images, dense_encoder)
    if file is not None:
        save_cache(file, {"pyramid": pyramid.state(), "dense": dense})
    return pyramid, dense, file
