"""An occupancy grid for empty-space skipping: a boolean voxel grid over the scene box."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F


class CoarseOccupancy:
    """A conservative coarse test for skipping empty space many steps at a time: :meth:`query` is true at every
    position within ``reach`` (world units, along each axis) of an occupied cell; false means that whole neighbourhood
    is empty. ``blocks`` (X, Y, Z) bool, each ``extent`` (3,) wide from ``origin`` (3,)."""

    def __init__(self, blocks: torch.Tensor, origin: torch.Tensor, extent: torch.Tensor):
        self.flat = blocks.reshape(-1)
        self.counts = torch.tensor(blocks.shape, device=blocks.device)
        self.strides = (blocks.shape[1] * blocks.shape[2], blocks.shape[2])
        self.origin, self.extent = origin, extent
        self.reach = float(extent.min())

    def query(self, positions: torch.Tensor) -> torch.Tensor:
        cell = ((positions - self.origin) / self.extent).floor().long()
        cell = torch.minimum(cell.clamp_min(0), self.counts - 1)  # outside the box: the nearest boundary block
        return self.flat[cell[:, 0] * self.strides[0] + cell[:, 1] * self.strides[1] + cell[:, 2]]


class OccupancyGrid(nn.Module):
    """Cells whose density may be non-negligible. Samples in other cells are skipped by the sampler.

    ``update`` keeps a running maximum (decayed) of the density seen at jittered points in each cell, as in
    instant-ngp / nerfacc; a field that can bound its density over a cell passes the bound to ``update_from``
    instead. A cell is occupied when ``density * step`` exceeds ``threshold`` (or the mean over all cells, if that
    is lower). The cells may have a different count per axis (``shape``), e.g. to follow a grid field's lattice.
    """

    aabb: torch.Tensor
    density: torch.Tensor
    occupied: torch.Tensor

    def __init__(self, aabb: torch.Tensor, resolution: int | tuple[int, int, int]):
        super().__init__()
        shape = (int(resolution),) * 3 if isinstance(resolution, int) else tuple(int(r) for r in resolution)
        self.register_buffer("aabb", aabb.clone().float())
        self.register_buffer("density", torch.zeros(shape))
        self.register_buffer("occupied", torch.ones(shape, dtype=torch.bool))
        self._coarse: tuple[torch.Tensor, int, int, CoarseOccupancy] | None = None  # `coarse`'s, and what it came from

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.density.shape)

    def resize(self, aabb: torch.Tensor, shape: tuple[int, ...]) -> None:
        """Cover a new box with new cells, every one occupied and with no history (until the next update)."""
        device = self.aabb.device
        self.aabb = aabb.clone().float().to(device)
        self.density = torch.zeros(shape, device=device)
        self.occupied = torch.ones(shape, dtype=torch.bool, device=device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # cells follow a growing grid in some models: adopt the checkpoint's shape
        density = state_dict.get(prefix + "density")
        if density is not None and density.shape != self.density.shape:
            self.resize(self.aabb, tuple(density.shape))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def cell_indices(self, positions: torch.Tensor) -> torch.Tensor:
        shape = torch.tensor(self.shape, device=positions.device)
        cell = (positions - self.aabb[0]) / (self.aabb[1] - self.aabb[0]) * shape
        return torch.minimum(cell.long().clamp_min(0), shape - 1)

    def query(self, positions: torch.Tensor) -> torch.Tensor:
        """True where a position lies in an occupied cell (positions outside the box are never occupied)."""
        inside = ((positions >= self.aabb[0]) & (positions <= self.aabb[1])).all(dim=-1)
        c = self.cell_indices(positions)
        _, sy, sz = self.shape
        flat = (c[:, 0] * sy + c[:, 1]) * sz + c[:, 2]
        return self.occupied.view(-1)[flat] & inside

    def coarse(self, factor: int = 4) -> CoarseOccupancy:
        """Blocks of ``factor``^3 cells, each occupied when it or one of its 26 neighbours holds an occupied cell, so
        that a position's block says whether any occupied cell lies within one block's extent of it (``reach``).
        Derived from ``occupied`` and rebuilt only after it changes."""
        cached = self._coarse
        if cached is not None and cached[0] is self.occupied and cached[1:3] == (self.occupied._version, factor):
            return cached[3]
        pad = [size for n in reversed(self.shape) for size in (0, (-n) % factor)]  # whole blocks: pad the high ends
        padded = F.pad(self.occupied, pad)
        x, y, z = (n // factor for n in padded.shape)
        blocks = padded.view(x, factor, y, factor, z, factor).any(5).any(3).any(1)
        blocks = F.pad(blocks, (1, 1) * 3)  # each block or one of its 26 neighbours: one axis at a time
        blocks = blocks[:-2] | blocks[1:-1] | blocks[2:]
        blocks = blocks[:, :-2] | blocks[:, 1:-1] | blocks[:, 2:]
        blocks = blocks[:, :, :-2] | blocks[:, :, 1:-1] | blocks[:, :, 2:]
        extent = (self.aabb[1] - self.aabb[0]) / torch.tensor(self.shape, device=self.aabb.device) * factor
        coarse = CoarseOccupancy(blocks, self.aabb[0].clone(), extent)
        self._coarse = (self.occupied, self.occupied._version, factor, coarse)
        return coarse

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
        device, shape = self.aabb.device, self.shape
        axes = [torch.arange(n, device=device) for n in shape]
        cells = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
        jitter = torch.rand(cells.shape, generator=generator).to(device)
        positions = self.aabb[0] + (cells + jitter) / torch.tensor(shape, device=device) * (self.aabb[1] - self.aabb[0])
        fresh = torch.cat([density_fn(positions[i : i + chunk]) for i in range(0, len(positions), chunk)])
        return self.update_from(fresh.view(shape), step, threshold, decay)

    @torch.no_grad()
    def update_from(self, fresh: torch.Tensor, step: float, threshold: float, decay: float = 0.95) -> float:
        """Fold a fresh density per cell (``shape``) into the running maximum (a field that can bound its density
        over a cell exactly passes that bound here instead of sampling); returns the occupied fraction."""
        self.density = torch.maximum(self.density * decay, fresh.to(self.density))
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
        shape = torch.tensor(self.shape, device=nz.device)
        lo = torch.minimum((nz.min(dim=0).values - margin_cells).clamp_min(0), shape).float()
        hi = torch.minimum((nz.max(dim=0).values + 1 + margin_cells).clamp_min(0), shape).float()
        size = self.aabb[1] - self.aabb[0]
        return torch.stack([self.aabb[0] + lo / shape * size, self.aabb[0] + hi / shape * size])
