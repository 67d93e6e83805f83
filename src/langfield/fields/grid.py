"""A dense voxel grid with trilinear interpolation that is fast on CPU.

``torch.nn.functional.grid_sample`` is slow on CPU for multi-channel 3D grids (its backward scatters channel by
channel): measured here at 758 ms fwd+bwd for 200k samples of a 12-channel 128^3 grid. This grid stores its
values channels-last as a ``(cells, C)`` table; the forward pass is one ``embedding_bag`` over the 8 corners, the
backward pass one sort of the corner references and one weighted ``embedding_bag`` of the output gradient per
touched row (:func:`corner_sums`; a one-channel table: a flat ``index_add_``) — the first version, an ``index_add_``
of whole rows, took 94 ms for the same work (see BENCHMARKS.md).

A step of ray marching touches a few percent of a large lattice (lego at 100×100, final grid: ~21k of 1.1 M feature
rows). With ``sparse_grad`` such a grid's gradient is a row-sparse COO tensor over the rows its corners touched, and
:class:`~langfield.train.optim.RowAdam` steps only those rows (Instant-NGP skips untouched entries the same way): no
dense gradient table to zero, check and stream through Adam every step. Gathering the rows costs per corner
reference, the dense table per value, so the gradient is sparse only where the table holds at least
``SPARSE_VALUES_PER_REFERENCE`` values per reference (the crossover measured on this CPU, BENCHMARKS.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: a gradient is row-sparse only where the table holds at least this many values per corner reference of the step
#: (12 channels: 4 rows per reference)
SPARSE_VALUES_PER_REFERENCE = 48


def corner_sums(grad: torch.Tensor, corners: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient of a trilinear gather with respect to its table, on the rows it touched: the distinct rows
    ``names`` (increasing) that ``corners`` (N, K) name and, for each, the sum of ``weights[n, k] * grad[n]`` over the
    references to it, ``(len(names), C)``.

    One sort of the references and one weighted ``embedding_bag`` over ``grad`` (every row's references are a
    contiguous run after the sort). Faster on CPU than accumulating (N·K, C) weighted rows with ``index_add_``, which
    dispatches per index and materialises them: a `nerf` step 4–8 % faster (BENCHMARKS.md)."""
    flat = corners.reshape(-1)
    ordered, order = torch.sort(flat)
    names, counts = torch.unique_consecutive(ordered, return_counts=True)
    offsets = counts.cumsum(0) - counts
    per_reference = weights.reshape(-1)[order].to(grad.dtype)
    values = F.embedding_bag(order // corners.shape[1], grad, offsets, mode="sum", per_sample_weights=per_reference)
    return names, values


class _TrilinearGather(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, table: torch.Tensor, corners: torch.Tensor, weights: torch.Tensor, sparse_grad: bool
    ) -> torch.Tensor:
        ctx.save_for_backward(table, corners, weights)
        ctx.sparse_grad = sparse_grad
        return F.embedding_bag(corners, table, per_sample_weights=weights, mode="sum")

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        table, corners, weights = ctx.saved_tensors
        grad_table = grad_weights = None
        if ctx.needs_input_grad[0]:
            grad = grad.contiguous()
            sparse = ctx.sparse_grad and table.numel() >= SPARSE_VALUES_PER_REFERENCE * corners.numel()
            if not sparse and table.shape[1] == 1:  # one channel: a flat index_add_ is a fast scalar loop
                rows = (grad * weights).reshape(-1)
                grad_table = torch.zeros_like(table).view(-1).index_add_(0, corners.reshape(-1), rows).view_as(table)
            else:
                names, values = corner_sums(grad, corners, weights)
                if sparse:
                    grad_table = torch.sparse_coo_tensor(
                        names[None], values, table.shape, is_coalesced=True, check_invariants=False
                    )
                else:
                    grad_table = torch.zeros_like(table).index_copy_(0, names, values)
        if ctx.needs_input_grad[2]:
            grad_weights = (table[corners] * grad[:, None, :]).sum(dim=-1)
        return grad_table, None, grad_weights, None


def corner_weights(
    positions: torch.Tensor, aabb: torch.Tensor, shape: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices ``(N, 8)`` of the 8 grid points around each position and their trilinear weights ``(N, 8)``.

    Grid points span the box inclusively (point 0 on ``aabb[0]``, point ``R-1`` on ``aabb[1]``); positions
    outside are clamped to the box.
    """
    res = torch.tensor(shape, device=positions.device, dtype=positions.dtype)
    p = (positions - aabb[0]) / (aabb[1] - aabb[0]) * (res - 1)
    p = torch.minimum(p.clamp_min(0.0), res - 1)
    base = torch.minimum(p.floor(), res - 2)
    frac = p - base
    base = base.long()
    sy, sz = shape[1] * shape[2], shape[2]
    origin = base[:, 0] * sy + base[:, 1] * sz + base[:, 2]
    offsets = torch.tensor(
        [dx * sy + dy * sz + dz for dx in (0, 1) for dy in (0, 1) for dz in (0, 1)], device=positions.device
    )
    fx, fy, fz = frac.unbind(-1)
    wx = torch.stack([1 - fx, fx], dim=-1)
    wy = torch.stack([1 - fy, fy], dim=-1)
    wz = torch.stack([1 - fz, fz], dim=-1)
    weights = (wx[:, :, None, None] * wy[:, None, :, None] * wz[:, None, None, :]).reshape(-1, 8)
    return origin[:, None] + offsets, weights


def _pairwise_max(volume: torch.Tensor) -> torch.Tensor:
    """The maximum over each 2×2×2 block of neighbouring points, ``(X-1, Y-1, Z-1)``: three elementwise maxima of
    shifted views (``max_pool3d(kernel_size=2, stride=1)`` gives the same, ~60× slower on CPU)."""
    volume = torch.maximum(volume[:-1], volume[1:])
    volume = torch.maximum(volume[:, :-1], volume[:, 1:])
    return torch.maximum(volume[:, :, :-1], volume[:, :, 1:])


def _refine(volume: torch.Tensor, axis: int, split: int) -> torch.Tensor:
    """``volume`` linearly interpolated at ``split`` points per cell along ``axis``: ``split (n - 1) + 1`` points."""
    n = volume.shape[axis]
    lower, upper = volume.narrow(axis, 0, n - 1), volume.narrow(axis, 1, n - 1)
    step = upper - lower
    inner = torch.stack([lower, *(lower + step * (k / split) for k in range(1, split))], dim=axis + 1)
    shape = list(volume.shape)
    shape[axis] = (n - 1) * split
    return torch.cat([inner.reshape(shape), volume.narrow(axis, n - 1, 1)], dim=axis)


class DenseGrid(nn.Module):
    """``C`` values on a regular lattice of ``shape`` points spanning ``aabb``, trilinearly interpolated."""

    lattice: torch.Tensor
    aabb: torch.Tensor

    def __init__(
        self,
        channels: int,
        shape: tuple[int, ...],
        aabb: torch.Tensor,
        init_std: float = 0.0,
        init_value: float = 0.0,
        sparse_grad: bool = False,
    ):
        super().__init__()
        #: gradients of ``values`` as row-sparse tensors (for :class:`~langfield.train.optim.RowAdam`)
        self.sparse_grad = sparse_grad
        if min(shape) < 2:
            raise ValueError(f"grid shape must be at least 2 per axis, got {shape}")
        self.register_buffer("lattice", torch.tensor([int(s) for s in shape], dtype=torch.long))
        self._shape = tuple(int(s) for s in shape)
        self.register_buffer("aabb", aabb.clone().float())
        values = torch.full((self.shape[0] * self.shape[1] * self.shape[2], channels), float(init_value))
        if init_std > 0:
            values += torch.randn_like(values) * init_std
        self.values = nn.Parameter(values)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # grids change shape while training (growth, box shrinking): adopt the checkpoint's shape
        values = state_dict.get(prefix + "values")
        if values is not None and values.shape != self.values.shape:
            self.values = nn.Parameter(torch.empty_like(values, device=self.values.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._shape = tuple(int(s) for s in self.lattice.tolist())

    @property
    def channels(self) -> int:
        return self.values.shape[1]

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.lookup(*self.corners(positions))

    def corners(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 8 lattice points around each position and their weights (shared by grids on the same lattice)."""
        return corner_weights(positions, self.aabb, self.shape)

    def lookup(self, corners: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The values interpolated at positions given by :meth:`corners`."""
        result = _TrilinearGather.apply(self.values, corners, weights, self.sparse_grad)
        assert isinstance(result, torch.Tensor)
        return result

    @torch.no_grad()
    def cell_max(self, split: int = 1) -> torch.Tensor:
        """The largest value of channel 0 anywhere in each lattice cell, each cell split ``split`` times per axis:
        ``(split (X-1), split (Y-1), split (Z-1))``, exactly: inside a cell trilinear interpolation peaks at a corner,
        so the values at the split points (interpolated separably) pooled over each small cell's 8 corners are the
        maximum over it."""
        values = self.as_volume()[0]
        if split > 1:
            for axis in range(3):
                values = _refine(values, axis, split)
        return _pairwise_max(values)

    def as_volume(self) -> torch.Tensor:
        """The values as a ``(C, X, Y, Z)`` volume."""
        return self.values.t().reshape(self.channels, *self.shape)

    def points(self) -> torch.Tensor:
        """World positions of the lattice points, ``(X*Y*Z, 3)`` in storage order."""
        axes = [torch.linspace(float(self.aabb[0, k]), float(self.aabb[1, k]), self.shape[k]) for k in range(3)]
        return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3).to(self.aabb.device)

    @torch.no_grad()
    def resample(self, aabb: torch.Tensor, shape: tuple[int, ...]) -> None:
        """Re-grid to a new box and shape by interpolating the current values (coarse-to-fine training)."""
        old_aabb, old_shape = self.aabb.clone(), self.shape
        self.lattice.copy_(torch.tensor([int(s) for s in shape]))
        self._shape = tuple(int(s) for s in shape)
        self.aabb.copy_(aabb)
        corners, weights = corner_weights(self.points(), old_aabb, old_shape)
        new_values = F.embedding_bag(corners, self.values.data, per_sample_weights=weights, mode="sum")
        self.values = nn.Parameter(new_values)

    def total_variation(self) -> torch.Tensor:
        """Mean squared difference of neighbouring lattice values (a smoothness prior)."""
        v = self.as_volume()
        return (
            (v[:, 1:] - v[:, :-1]).pow(2).mean()
            + (v[:, :, 1:] - v[:, :, :-1]).pow(2).mean()
            + (v[..., 1:] - v[..., :-1]).pow(2).mean()
        ) / 3.0
