"""A training batch of rays."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RayBatch:
    """A training batch: rays, their target colours and background, and where they come from (the index among the
    training views and the flat pixel index), so that methods can look up per-pixel supervision of their own."""

    origins: torch.Tensor  # (R, 3)
    directions: torch.Tensor  # (R, 3)
    target: torch.Tensor  # (R, 3)
    background: torch.Tensor  # (R, 3)
    views: torch.Tensor  # (R,) index into the training views
    pixels: torch.Tensor  # (R,) y * width + x
