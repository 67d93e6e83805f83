"""An occupancy grid for empty-space skipping: a boolean voxel grid over the scene box."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class OccupancyGrid(nn.Module):
    """Cells whose density may be non-negligible. Samples in other cells are skipped by the sampler.

    ``update`` keeps a running maximum (decayed) of the density seen at jittered points in each cell, as in
    instant-ngp / nerfacc, and marks a cell occupied when ``density * step`` exceeds ``threshold`` (or the mean
    over all cells, if that is lower).
    """

    aabb: torch.Tensor
    density: torch.Tensor
    occupied: torch.Tensor

    def __init__(self, aabb: torch.Tensor, resolution: int):
        super().__init__()
        self.resolution = int(resolution)
        self.register_buffer("aabb", aabb.clone().float())
        self.register_buffer("density", torch.zeros((resolution,) * 3))
        self.register_buffer("occupied", torch.ones((resolution,) * 3, dtype=torch.bool))

    def cell_indices(self, positions: torch.Tensor) -> torch.Tensor:
        cell = (positions - self.aabb[0]) / (self.aabb[1] - self.aabb[0]) * self.resolution
        return cell.long().clamp(0, self.resolution - 1)

    def query(self, positions: torch.Tensor) -> torch.Tensor:
        """True where a position lies in an occupied cell (positions outside the box are never occupied)."""
        inside = ((positions >= self.aabb[0]) & (positions <= self.aabb[1])).all(dim=-1)
        c = self.cell_indices(positions)
        r = self.resolution
        flat = (c[:, 0] * r + c[:, 1]) * r + c[:, 2]
        return self.occupied.view(-1)[flat] & inside

    @torch.no_grad()
    def update(
        self,
        density_fn: Callable[[torch.Tensor], torch.Tensor],
        step: float,
        threshold: float,
        decay: float = 0.95,
        generator: torch.Generator | None = None,
        chunk: int = 1 << 20,
    ) -> float:
        """Re-evaluate every cell at a random point inside it; returns the occupied fraction."""
        r = self.resolution
        idx = torch.arange(r, device=self.aabb.device)
        cells = torch.stack(torch.meshgrid(idx, idx, idx, indexing="ij"), dim=-1).reshape(-1, 3)
        jitter = torch.rand(cells.shape, generator=generator).to(self.aabb.device)
        positions = self.aabb[0] + (cells + jitter) / r * (self.aabb[1] - self.aabb[0])
        fresh = torch.cat([density_fn(positions[i : i + chunk]) for i in range(0, len(positions), chunk)])
        self.density = torch.maximum(self.density * decay, fresh.view(r, r, r))
        # as in nerfacc, never threshold above the mean: a field that is still faint everywhere keeps its
        # densest cells instead of losing every cell (and with them every gradient) at once
        opacity = self.density * step
        self.occupied = opacity > min(threshold, float(opacity.mean()))
        return float(self.occupied.float().mean())

    @torch.no_grad()
    def occupied_aabb(self, step: float, threshold: float, margin_cells: int = 2) -> torch.Tensor | None:
        """The box around every cell whose step opacity ``density * step`` exceeds ``threshold``, grown by a margin;
        ``None`` when there is none."""
        nz = (self.density * step > threshold).nonzero()
        if nz.numel() == 0:
            return None
        r = self.resolution
        lo = (nz.min(dim=0).values - margin_cells).clamp(0, r).float()
        hi = (nz.max(dim=0).values + 1 + margin_cells).clamp(0, r).float()
        size = self.aabb[1] - self.aabb[0]
        return torch.stack([self.aabb[0] + lo / r * size, self.aabb[0] + hi / r * size])
