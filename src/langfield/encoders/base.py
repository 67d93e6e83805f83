"""The one interface every language method talks to.

Images are channels-last floats in [0, 1], ``(N, H, W, 3)`` or a single ``(H, W, 3)`` (uint8 is accepted and
scaled), on any device; the encoder moves itself to the images' device. Resizing to the model's input size
(shorter side, then a centre crop, antialiased bilinear) and the model's normalisation happen inside and are
differentiable, so losses on embeddings reach the rendered pixels. Text embeddings are computed without gradient
(every method keeps the text tower frozen) and cached per string.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from langfield.errors import LangfieldError


def as_image_batch(images: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) float from (N, H, W, 3) / (H, W, 3), float or uint8; one-line errors for anything else."""
    if not isinstance(images, torch.Tensor):
        raise LangfieldError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() == 3:
        images = images[None]
    if images.dim() != 4 or images.shape[-1] != 3:
        raise LangfieldError(
            f"images must be (N, H, W, 3) or (H, W, 3) channels-last RGB, got shape {tuple(images.shape)}"
        )
    if images.shape[0] == 0:
        raise LangfieldError("no images to encode")
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    return images.float()


def resize_center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W, 3) -> (N, 3, size, size): shorter side to ``size``, centre crop; differentiable."""
    x = images.permute(0, 3, 1, 2)
    h, w = x.shape[-2:]
    if (h, w) != (size, size):
        scale = size / min(h, w)
        new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=new_h < h)
        top, left = (new_h - size) // 2, (new_w - size) // 2
        x = x[..., top : top + size, left : left + size]
    return x


class Encoder(nn.Module):
    """Base class: subclasses set ``name``, ``embed_dim``, ``input_size``, ``has_text``, ``logit_scale`` and the
    ``mean``/``std`` buffers, and implement ``_text``, ``_image`` and ``_dense``."""

    mean: torch.Tensor
    std: torch.Tensor

    name: str = "encoder"
    embed_dim: int
    input_size: int
    has_text: bool = True

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self._text_cache: dict[str, torch.Tensor] = {}

    # --- what subclasses implement -------------------------------------------------------------------------------
    def _text(self, texts: list[str]) -> torch.Tensor:  # (N, D), any norm
        raise LangfieldError(f"encoder '{self.name}' has no text tower")

    def _image(self, pixels: torch.Tensor) -> torch.Tensor:  # normalised (N, 3, S, S) -> (N, D), any norm
        raise NotImplementedError

    def _dense(self, pixels: torch.Tensor) -> torch.Tensor:  # normalised (N, 3, S, S) -> (N, h, w, C)
        raise NotImplementedError

    # --- the interface ---------------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.mean.device

    def logit_scale(self) -> float:
        """The temperature of zero-shot classification (CLIP's learned ``logit_scale.exp()``)."""
        return 100.0

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        images = as_image_batch(images)
        if images.device != self.device:
            self.to(images.device)
        return (resize_center_crop(images, self.input_size) - self.mean) / self.std

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """(N, D) unit vectors; differentiable with respect to ``images``."""
        return F.normalize(self._image(self.preprocess(images)), dim=-1)

    def dense_features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, h, w, C) patch features on the model's patch grid (not normalised)."""
        return self._dense(self.preprocess(images))

    def encode_text(self, texts: list[str] | str) -> torch.Tensor:
        """(N, D) unit vectors, cached per string, no gradient."""
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            raise LangfieldError("no text to encode")
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise LangfieldError(f"text prompts must be non-empty strings, got {text!r}")
        missing = list(dict.fromkeys(t for t in texts if t not in self._text_cache))
        for start in range(0, len(missing), 256):
            chunk = missing[start : start + 256]
            with torch.no_grad():
                embedded = F.normalize(self._text(chunk).float(), dim=-1).cpu()
            self._text_cache.update(zip(chunk, embedded))
        return torch.stack([self._text_cache[t] for t in texts]).to(self.device)

    def classify(self, images: torch.Tensor, labels: list[str]) -> torch.Tensor:
        """(N, len(labels)) zero-shot probabilities: softmax of scaled cosine similarities."""
        text = self.encode_text(labels)
        return torch.softmax(self.logit_scale() * self.encode_image(images) @ text.T, dim=-1)
