"""Samplers. ``march_uniform`` walks rays through a box in fixed steps and skips cells the occupancy grid marks
empty; ``stratified_bins`` and ``sample_pdf`` are NeRF's coarse and hierarchical samplers."""

from __future__ import annotations

from typing import Callable

import torch

from langfield.fields.occupancy import CoarseOccupancy
from langfield.render.samples import RaySamples


def ray_aabb(origins: torch.Tensor, directions: torch.Tensor, aabb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry and exit distances of rays through the box ``aabb`` (2, 3); ``t_far <= t_near`` means a miss."""
    inv = 1.0 / torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
    t0 = (aabb[0] - origins) * inv
    t1 = (aabb[1] - origins) * inv
    t_near = torch.minimum(t0, t1).amax(dim=-1)
    t_far = torch.maximum(t0, t1).amin(dim=-1)
    return t_near, t_far


def march_uniform(
    origins: torch.Tensor,
    directions: torch.Tensor,
    t_near: torch.Tensor,
    t_far: torch.Tensor,
    step: float,
    first_step: int,
    num_steps: int,
    occupied: Callable[[torch.Tensor], torch.Tensor] | None = None,
    offsets: torch.Tensor | None = None,
    coarse: CoarseOccupancy | None = None,
) -> RaySamples:
    """Intervals ``[t_near + (k + o) step, + step)`` for ``k`` in ``[first_step, first_step + num_steps)``.

    ``offsets`` (R,) in [0, 1) jitter each ray (stratified sampling); ``None`` puts every sample at offset 0.5's
    interval start 0. Samples past ``t_far`` or in cells where ``occupied(positions)`` is false are dropped.
    ``coarse`` (with ``occupied``) first tests blocks of steps at their centres and drops the blocks with no occupied
    cell within reach: the same samples, found with one test per block instead of one per step in empty space.
    """
    rays = origins.shape[0]
    device = origins.device
    o = offsets[:, None] if offsets is not None else torch.zeros((rays, 1), device=device, dtype=origins.dtype)
    block = 1
    if coarse is not None and occupied is not None and rays > 0:
        # the steps' midpoints lie within (block - 1) / 2 steps of their block's centre
        longest = float(directions.detach().norm(dim=-1).max()) * step
        block = min(num_steps, 1 + int(2 * coarse.reach / longest)) if longest > 0 else 1
    if block > 1:
        assert coarse is not None and occupied is not None
        first = torch.arange(first_step, first_step + num_steps, block, device=device, dtype=origins.dtype)  # (B,)
        keep = t_near[:, None] + (first + o + 0.5) * step < t_far[:, None]  # (R, B) the block's first step
        ray_idx, block_idx = keep.nonzero(as_tuple=True)
        centres = t_near[ray_idx] + (first[block_idx] + 0.5 * block + o[ray_idx, 0]) * step
        hit = coarse.query(origins[ray_idx] + directions[ray_idx] * centres[:, None])
        ray_idx = ray_idx[hit]
        # the steps of the blocks hit, (H, block), tested at their midpoints
        k = first[block_idx[hit]][:, None] + torch.arange(block, device=device, dtype=origins.dtype)
        starts = t_near[ray_idx][:, None] + (k + o[ray_idx]) * step
        keep = (k < first_step + num_steps) & (starts + 0.5 * step < t_far[ray_idx][:, None])
        positions = origins[ray_idx][:, None] + directions[ray_idx][:, None] * (starts + 0.5 * step)[..., None]
        keep &= occupied(positions.view(-1, 3)).view(keep.shape)
        ray_idx, starts = ray_idx[:, None].expand_as(keep)[keep], starts[keep]
    else:
        k = torch.arange(first_step, first_step + num_steps, device=device, dtype=origins.dtype)
        starts = t_near[:, None] + (k[None, :] + o) * step  # (R, K)
        keep = starts + 0.5 * step < t_far[:, None]
        ray_idx, step_idx = keep.nonzero(as_tuple=True)
        starts = starts[ray_idx, step_idx]
        if occupied is not None and ray_idx.numel() > 0:
            pos = origins[ray_idx] + directions[ray_idx] * (starts + 0.5 * step)[:, None]
            mask = occupied(pos)
            ray_idx, starts = ray_idx[mask], starts[mask]
    return RaySamples(ray_idx, starts, starts + step, rays)


def stratified_bins(
    near: torch.Tensor, far: torch.Tensor, count: int, generator: torch.Generator | None, jitter: bool
) -> torch.Tensor:
    """Bin edges ``(R, count + 1)`` between ``near`` and ``far``, each bin jittered when ``jitter``."""
    u = torch.linspace(0.0, 1.0, count + 1, device=near.device)
    edges = near[:, None] + (far - near)[:, None] * u
    if jitter:
        mids = 0.5 * (edges[:, 1:] + edges[:, :-1])
        upper = torch.cat([mids, edges[:, -1:]], dim=-1)
        lower = torch.cat([edges[:, :1], mids], dim=-1)
        r = torch.rand(edges.shape, device=near.device, generator=generator)
        edges = lower + (upper - lower) * r
        edges, _ = torch.sort(edges, dim=-1)
    return edges


def sample_pdf(
    edges: torch.Tensor, weights: torch.Tensor, count: int, generator: torch.Generator | None, jitter: bool
) -> torch.Tensor:
    """``count`` depths per ray drawn from the piecewise-constant PDF of ``weights`` over ``edges`` (R, n + 1).

    Returns the sorted union of the old edges and the new depths as new edges (hierarchical sampling).
    """
    weights = weights.detach() + 1e-5
    pdf = weights / weights.sum(dim=-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, dim=-1)], dim=-1)
    if jitter:
        u = torch.rand((edges.shape[0], count), device=edges.device, generator=generator)
    else:
        u = torch.linspace(0.0, 1.0, count, device=edges.device).expand(edges.shape[0], count)
    u = u.contiguous()
    idx = torch.searchsorted(cdf, u, right=True).clamp(1, cdf.shape[-1] - 1)
    cdf_lo, cdf_hi = torch.gather(cdf, 1, idx - 1), torch.gather(cdf, 1, idx)
    e_lo, e_hi = torch.gather(edges, 1, idx - 1), torch.gather(edges, 1, idx)
    frac = ((u - cdf_lo) / (cdf_hi - cdf_lo).clamp_min(1e-8)).clamp(0, 1)
    new = e_lo + frac * (e_hi - e_lo)
    merged, _ = torch.sort(torch.cat([edges, new.detach()], dim=-1), dim=-1)
    return merged
