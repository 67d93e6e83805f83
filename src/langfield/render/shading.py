"""Shading of surface samples: normals from a density field and Lambertian lighting. Pure functions."""

from __future__ import annotations

from typing import Callable

import torch
from torch.nn import functional as F


def density_normals(
    density_fn: Callable[[torch.Tensor], torch.Tensor], positions: torch.Tensor, epsilon: float
) -> torch.Tensor:
    """Unit normals -∇σ/|∇σ| (pointing out of the object) by central differences of ``density_fn`` at
    ``positions`` (N, 3), step ``epsilon``; differentiable with respect to the field."""
    offsets = torch.eye(3, device=positions.device, dtype=positions.dtype) * epsilon
    probes = torch.cat([positions[:, None] + offsets, positions[:, None] - offsets], dim=1)  # (N, 6, 3)
    values = density_fn(probes.reshape(-1, 3)).reshape(-1, 2, 3)
    gradient = (values[:, 0] - values[:, 1]) / (2 * epsilon)
    return -F.normalize(gradient, dim=-1, eps=1e-12)


def lambertian(
    albedo: torch.Tensor, normals: torch.Tensor, light_directions: torch.Tensor, ambient: float, diffuse: float
) -> torch.Tensor:
    """``albedo * (ambient + diffuse * max(0, n·l))`` for unit normals and unit directions towards the light."""
    cosine = (normals * light_directions).sum(dim=-1, keepdim=True).clamp_min(0.0)
    return albedo * (ambient + diffuse * cosine)
