"""Packed ray samples: a flat list of intervals, each tagged with the ray it belongs to, sorted by ray."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RaySamples:
    ray_indices: torch.Tensor  # (S,) long, non-decreasing
    t_starts: torch.Tensor  # (S,)
    t_ends: torch.Tensor  # (S,)
    num_rays: int

    def __len__(self) -> int:
        return self.ray_indices.shape[0]

    @property
    def t_mid(self) -> torch.Tensor:
        return 0.5 * (self.t_starts + self.t_ends)

    @property
    def deltas(self) -> torch.Tensor:
        return self.t_ends - self.t_starts

    def positions(self, origins: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        return origins[self.ray_indices] + directions[self.ray_indices] * self.t_mid[:, None]

    @staticmethod
    def from_dense(t_values: torch.Tensor) -> "RaySamples":
        """Samples from sorted bin edges ``(R, n + 1)``: ``n`` intervals per ray."""
        rays, edges = t_values.shape
        ray_indices = torch.arange(rays, device=t_values.device).repeat_interleave(edges - 1)
        return RaySamples(ray_indices, t_values[:, :-1].reshape(-1), t_values[:, 1:].reshape(-1), rays)
