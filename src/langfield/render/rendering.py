"""The one rendering entry point every method calls (nerfacc-style): packed samples, a density function and a colour
function in, packed weights and composited per-ray outputs out. Pure: no state, no modules.

``density_fn(positions, ray_indices) -> (sigmas, features)`` is evaluated at every sample (``features`` may be
``None``, or a tensor or tuple of tensors per sample with whatever the colour function needs: a conditional field's
geometry features, an MLP's colours, a grid's corners);
``color_fn(positions, directions, ray_indices, features) -> colours`` only at samples whose weight exceeds
``color_threshold``. Methods pass their shading, conditioning and codes in through these two closures.
:func:`march_and_render` adds uniform marching through a box with empty-space skipping, in segments that drop rays
once they are opaque.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from langfield.fields.occupancy import CoarseOccupancy
from langfield.render.samplers import march_uniform, ray_aabb
from langfield.render.samples import RaySamples
from langfield.render.volume import packed_weights

#: (positions (S, 3), ray indices (S,)) -> (densities (S,), features for the colour function or None)
DensityFn = Callable[[torch.Tensor, torch.Tensor], "tuple[torch.Tensor, Any]"]
#: (positions (C, 3), directions (C, 3), ray indices (C,), the density function's features of those samples) -> (C, 3)
ColorFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Any], torch.Tensor]


@dataclass
class Rendered:
    """Per-ray sums of one call (before the background) and the packed samples they came from."""

    rgb: torch.Tensor  # (R, 3) sum of w·c over the coloured samples
    opacity: torch.Tensor  # (R,) sum of w
    depth: torch.Tensor  # (R,) sum of w·t (divide by opacity for the expected depth)
    weights: torch.Tensor  # (S,)
    ray_indices: torch.Tensor  # (S,)
    t_mid: torch.Tensor  # (S,)
    deltas: torch.Tensor  # (S,)
    optical_depth: torch.Tensor  # (R,) sum of σδ (continues a ray in the next segment)
    colored: torch.Tensor  # (S,) bool: the samples whose colour was evaluated
    colors: torch.Tensor  # (C, 3) their colours


def render_samples(
    samples: RaySamples,
    origins: torch.Tensor,
    directions: torch.Tensor,
    density_fn: DensityFn,
    color_fn: ColorFn,
    color_threshold: float = 0.0,
    transmittance: torch.Tensor | None = None,
) -> Rendered:
    """Volume-render packed ``samples`` of rays (R, 3). ``transmittance`` (R,) continues rays rendered in segments;
    samples whose weight is at most ``color_threshold`` get no colour (a negative threshold colours every sample)."""
    rays, ids = origins.shape[0], samples.ray_indices
    t_mid, deltas = samples.t_mid, samples.deltas  # computed once (properties of the samples)
    positions = origins[ids] + directions[ids] * t_mid[:, None]
    sigmas, features = density_fn(positions, ids)
    weights, _, tau = packed_weights(sigmas, deltas, ids, rays, transmittance)
    opacity = origins.new_zeros(rays).index_add(0, ids, weights)
    depth = origins.new_zeros(rays).index_add(0, ids, weights * t_mid)
    rgb = origins.new_zeros(rays, 3)
    colored = weights > color_threshold
    colors = origins.new_zeros(0, 3)
    if bool(colored.any()):
        v = ids[colored]
        colors = color_fn(positions[colored], directions[v], v, _select(features, colored))
        rgb = rgb.index_add(0, v, colors * weights[colored, None])
    return Rendered(rgb, opacity, depth, weights, ids, t_mid, deltas, tau, colored, colors)


def _on_callers_rays(
    density_fn: DensityFn, color_fn: ColorFn, active: torch.Tensor | None
) -> tuple[DensityFn, ColorFn]:
    """The callbacks for :func:`render_samples` on the subset ``active`` of the caller's rays: they are given the
    caller's ray indices (methods look up per-ray codes or lights with them), not the indices within the subset."""
    if active is None:  # every ray: the indices are the same
        return density_fn, color_fn

    def density(positions: torch.Tensor, ray_indices: torch.Tensor) -> tuple[torch.Tensor, Any]:
        return density_fn(positions, active[ray_indices])

    def color(positions: torch.Tensor, view: torch.Tensor, ray_indices: torch.Tensor, features: Any) -> torch.Tensor:
        return color_fn(positions, view, active[ray_indices], features)

    return density, color


def _select(features: Any, mask: torch.Tensor) -> Any:
    """The density function's per-sample features (None, a tensor or a tuple of tensors) at the masked samples."""
    if features is None:
        return None
    if isinstance(features, tuple):
        return tuple(f[mask] for f in features)
    return features[mask]


def composite(
    rgb: torch.Tensor, opacity: torch.Tensor, depth: torch.Tensor, background: torch.Tensor
) -> dict[str, Any]:
    """``rgb`` over ``background`` (R, 3) or (3,), and the expected depth."""
    return {
        "rgb": rgb + (1.0 - opacity)[:, None] * background,
        "opacity": opacity,
        "depth": depth / opacity.clamp_min(1e-6),
    }


def march_and_render(
    origins: torch.Tensor,
    directions: torch.Tensor,
    aabb: torch.Tensor,
    near: float,
    step: float,
    density_fn: DensityFn,
    color_fn: ColorFn,
    background: torch.Tensor,
    occupied: Callable[[torch.Tensor], torch.Tensor] | None = None,
    jitter: torch.Tensor | None = None,
    color_threshold: float = 0.0,
    segment: int | None = None,
    early_stop: float = 0.0,
    coarse: CoarseOccupancy | None = None,
) -> dict[str, Any]:
    """Render rays through ``aabb`` in steps of ``step`` from ``near``, skipping cells where ``occupied`` is false.
    ``jitter`` (R,) in [0, 1): stratified offsets (training). ``segment``: march that many steps at a time and drop
    rays whose transmittance fell below ``early_stop`` (evaluation); None marches whole rays at once (one segment:
    the same arithmetic, as continuing from transmittance 1 and adding to zeros are exact). ``coarse`` skips empty
    space in blocks of steps (:func:`march_uniform`; the same samples, fewer occupancy tests). The callbacks are
    given the indices of these rays (R), also when rays that miss the box or turned opaque are left out.

    Returns ``rgb``, ``opacity``, ``depth`` (R, ...), the packed ``weights``, ``ray_indices``, ``t_mid``, ``deltas``
    and ``colored`` = (colours, weights, ray indices) of the samples whose colour was evaluated."""
    rays, device = origins.shape[0], origins.device
    t_near, t_far = ray_aabb(origins, directions, aabb)
    t_near = t_near.clamp_min(near)
    total_steps = max(1, int(math.ceil(float((t_far - t_near).detach().max().clamp_min(0)) / step)))
    segment = total_steps if segment is None else segment  # one segment: whole rays at once
    transmittance = torch.ones(rays, device=device)
    active = torch.arange(rays, device=device)[t_near + 0.5 * step < t_far]  # rays that miss the box march nothing
    rgb, opacity, depth = origins.new_zeros(rays, 3), origins.new_zeros(rays), origins.new_zeros(rays)
    kept: list[tuple[torch.Tensor, ...]] = []
    colored: list[tuple[torch.Tensor, ...]] = []  # per segment: (colours, weights, ray indices) of coloured samples
    for first in range(0, total_steps, segment):
        if active.numel() == 0:
            break
        samples = march_uniform(
            origins[active],
            directions[active],
            t_near[active],
            t_far[active],
            step,
            first,
            segment,
            occupied=occupied,
            offsets=None if jitter is None else jitter[active],
            coarse=coarse,
        )
        if len(samples) > 0:
            on_rays = _on_callers_rays(density_fn, color_fn, None if active.numel() == rays else active)
            part = render_samples(
                samples,
                origins[active],
                directions[active],
                *on_rays,
                color_threshold,
                transmittance[active],
            )
            rgb, opacity, depth = (
                rgb.index_add(0, active, part.rgb),
                opacity.index_add(0, active, part.opacity),
                depth.index_add(0, active, part.depth),
            )
            ids = active[part.ray_indices]
            if len(part.colors):
                colored.append((part.colors, part.weights[part.colored], ids[part.colored]))
            kept.append((part.weights, ids, part.t_mid, part.deltas))
            transmittance = transmittance.index_put((active,), transmittance[active] * torch.exp(-part.optical_depth))
        # go on with the rays that are neither opaque nor past the box (the jitter only moves samples further)
        remaining = t_near[active] + (first + segment + 0.5) * step < t_far[active]
        active = active[remaining & (transmittance[active] > early_stop)]
    out = composite(rgb, opacity, depth, background)
    empty = origins.new_zeros(0)
    columns = (
        [torch.cat(c) for c in zip(*kept)]
        if kept
        else [empty, torch.zeros(0, dtype=torch.long, device=device), empty, empty]
    )
    every_colored = tuple(torch.cat(c) for c in zip(*colored)) if colored else None  # all segments'
    out.update(weights=columns[0], ray_indices=columns[1], t_mid=columns[2], deltas=columns[3], colored=every_colored)
    return out
