"""The interface every diffusion backend implements for score distillation and sampling.

A prior works on *model space* tensors ``x`` (N, C, h, w): pixels scaled to [-1, 1] for pixel-space models,
VAE latents for latent models. ``encode_images`` maps rendered images (N, H, W, 3) in [0, 1] to model space
(differentiably, so the SDS gradient reaches the renders), ``decode`` maps back, and ``predict_noise`` returns the
ε-prediction whatever the model's own parameterisation (ε or v).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class TextCondition:
    """What the denoiser's cross-attention reads: token states (N, L, D) and an optional real-token mask (N, L)."""

    states: torch.Tensor
    mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.states.shape[0]

    @staticmethod
    def cat(parts: list["TextCondition"]) -> "TextCondition":
        masks = [p.mask for p in parts]
        mask = None if any(m is None for m in masks) else torch.cat([m for m in masks if m is not None])
        return TextCondition(torch.cat([p.states for p in parts]), mask)

    def select(self, index: torch.Tensor | list[int]) -> "TextCondition":
        return TextCondition(self.states[index], None if self.mask is None else self.mask[index])

    def to(self, device) -> "TextCondition":
        return TextCondition(self.states.to(device), None if self.mask is None else self.mask.to(device))


class DiffusionPrior(nn.Module):
    """Base class: subclasses set ``name``, ``resolution`` (the image side the model expects), ``prediction_type``
    (``epsilon`` or ``v_prediction``) and the ``alphas_cumprod`` buffer, and implement ``text_condition``,
    ``_denoiser``, ``encode_images`` and ``decode``."""

    alphas_cumprod: torch.Tensor

    name: str = "prior"
    resolution: int
    prediction_type: str = "epsilon"
    #: True when model space is a VAE's latent space (Stable Diffusion), False for pixels
    latent: bool = False

    def __init__(self, alphas_cumprod: torch.Tensor):
        super().__init__()
        self.register_buffer("alphas_cumprod", alphas_cumprod.float().clone(), persistent=False)

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """(C, h, w) of one model-space sample."""
        return (3, self.resolution, self.resolution)

    @property
    def num_timesteps(self) -> int:
        return self.alphas_cumprod.shape[0]

    @property
    def device(self) -> torch.device:
        return self.alphas_cumprod.device

    def text_condition(self, texts: list[str]) -> TextCondition:
        raise NotImplementedError

    def _denoiser(self, x: torch.Tensor, t: torch.Tensor, condition: TextCondition) -> torch.Tensor:
        raise NotImplementedError

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) in [0, 1] -> model space, differentiable."""
        raise NotImplementedError

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Model space -> (N, H, W, 3) in [0, 1]."""
        raise NotImplementedError

    def predict_noise(self, x: torch.Tensor, t: torch.Tensor, condition: TextCondition) -> torch.Tensor:
        out = self._denoiser(x, t, condition)
        if out.shape[1] == 2 * x.shape[1]:  # learned variance (DeepFloyd IF): the first half is the prediction
            out = out[:, : x.shape[1]]
        if self.prediction_type == "v_prediction":
            a = self.alphas_cumprod[t].view(-1, 1, 1, 1)
            out = a.sqrt() * out + (1 - a).sqrt() * x
        return out

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise


def pixels_to_model(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """(N, H, W, 3) in [0, 1] -> (N, 3, R, R) in [-1, 1]; bilinear (antialiased when shrinking), differentiable."""
    x = images.permute(0, 3, 1, 2)
    if x.shape[-2:] != (resolution, resolution):
        x = F.interpolate(
            x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=x.shape[-1] > resolution
        )
    return x * 2 - 1


def model_to_pixels(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1)
