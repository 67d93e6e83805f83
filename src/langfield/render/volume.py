"""Volume rendering on packed samples. Pure functions: no state, no modules.

For samples ``i`` of a ray with densities ``sigma_i`` over intervals ``delta_i``:
``alpha_i = 1 - exp(-sigma_i delta_i)``, ``T_i = exp(-sum_{j<i} sigma_j delta_j)``, ``w_i = T_i alpha_i``.
Weights of a ray sum to ``1 - T_end <= 1``.
"""

from __future__ import annotations

import torch


def exclusive_cumsum(values: torch.Tensor, ray_indices: torch.Tensor, num_rays: int) -> torch.Tensor:
    """Per-ray exclusive cumulative sum of packed ``values`` (ray_indices non-decreasing).

    One global cumulative sum in float64 minus each ray's starting value: no per-ray loop and no padding.
    """
    values64 = values.double()
    exclusive = torch.cumsum(values64, dim=0) - values64
    counts = torch.bincount(ray_indices, minlength=num_rays)
    first = torch.cumsum(counts, dim=0) - counts
    return (exclusive - exclusive[first[ray_indices]]).to(values.dtype)


def distortion_loss(
    weights: torch.Tensor, t_mid: torch.Tensor, deltas: torch.Tensor, ray_indices: torch.Tensor, num_rays: int
) -> torch.Tensor:
    """Mip-NeRF 360's distortion loss per ray, in O(samples): it is small when each ray's weight sits in one
    compact interval, so it removes semi-transparent floaters.

    ``sum_ij w_i w_j |t_i - t_j| + 1/3 sum_i w_i^2 delta_i`` with the double sum written with exclusive sums
    ``2 sum_i w_i (t_i W_<i - (wt)_<i)``.
    """
    w_before = exclusive_cumsum(weights, ray_indices, num_rays)
    wt_before = exclusive_cumsum(weights * t_mid, ray_indices, num_rays)
    per_sample = 2.0 * weights * (t_mid * w_before - wt_before) + weights**2 * deltas / 3.0
    return weights.new_zeros(num_rays).index_add(0, ray_indices, per_sample)


def packed_weights(
    sigmas: torch.Tensor,
    deltas: torch.Tensor,
    ray_indices: torch.Tensor,
    num_rays: int,
    initial_transmittance: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weights, transmittance before each sample, and per-ray optical depth of packed samples.

    ``ray_indices`` must be non-decreasing. ``initial_transmittance`` (num_rays,) continues rays rendered in
    several segments.
    """
    tau = sigmas * deltas
    if tau.numel() == 0:
        empty = tau.new_zeros(0)
        return empty, empty, tau.new_zeros(num_rays)
    transmittance = torch.exp(-exclusive_cumsum(tau, ray_indices, num_rays))
    if initial_transmittance is not None:
        transmittance = transmittance * initial_transmittance[ray_indices]
    alphas = 1.0 - torch.exp(-tau)
    weights = transmittance * alphas
    depth = tau.new_zeros(num_rays).index_add(0, ray_indices, tau)
    return weights, transmittance, depth


def render_weights(sigmas: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Weights of dense samples ``(R, n)`` (the classic NeRF layout)."""
    tau = sigmas * deltas
    exclusive = torch.cumsum(tau, dim=-1) - tau
    return torch.exp(-exclusive) * (1.0 - torch.exp(-tau))


def accumulate(
    values: torch.Tensor | None, weights: torch.Tensor, ray_indices: torch.Tensor, num_rays: int
) -> torch.Tensor:
    """Per-ray weighted sum of per-sample ``values`` (S, C) or, with ``values=None``, of the weights (opacity)."""
    if values is None:
        return weights.new_zeros(num_rays).index_add(0, ray_indices, weights)
    out = values.new_zeros((num_rays, values.shape[-1]))
    return out.index_add(0, ray_indices, values * weights[:, None])
