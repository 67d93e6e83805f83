"""Analytic ray intersections with the world's primitives, in each primitive's local frame (z up, centred).

Every function takes local ray origins ``o`` and directions ``d`` (R, 3) and per-ray dimensions ``dims`` (R, 3),
and returns the hit distance ``t`` (R,) (``inf`` where missed or behind the origin) and the local unit normal
(R, 3). Directions need not be unit length for the quadrics; distances are in units of ``|d|``.
"""

from __future__ import annotations

import torch

INF = float("inf")
EPS = 1e-5


def _first_positive(t0: torch.Tensor, t1: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    t = torch.where(t0 > EPS, t0, t1)
    return torch.where(valid & (t > EPS), t, torch.full_like(t, INF))


def sphere(o: torch.Tensor, d: torch.Tensor, dims: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r = dims[:, 0]
    a = (d * d).sum(-1)
    b = (o * d).sum(-1)
    c = (o * o).sum(-1) - r * r
    disc = b * b - a * c
    sq = disc.clamp_min(0).sqrt()
    t = _first_positive((-b - sq) / a, (-b + sq) / a, disc > 0)
    p = o + d * torch.nan_to_num(t, posinf=0.0)[:, None]
    return t, p / r[:, None]


def box(o: torch.Tensor, d: torch.Tensor, dims: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An axis-aligned box with half extents ``dims``."""
    inv = 1.0 / torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
    t_lo = (-dims - o) * inv
    t_hi = (dims - o) * inv
    t_min = torch.minimum(t_lo, t_hi)
    t_max = torch.maximum(t_lo, t_hi)
    t_enter, axis = t_min.max(dim=-1)
    t_exit = t_max.min(dim=-1).values
    valid = (t_enter <= t_exit) & (t_exit > EPS)
    t = torch.where(valid & (t_enter > EPS), t_enter, torch.full_like(t_enter, INF))
    normal = torch.zeros_like(o)
    normal.scatter_(1, axis[:, None], -torch.sign(d.gather(1, axis[:, None])))
    return t, normal


def _merge_caps(o, d, radius, half_height, t, normal, top: bool, bottom: bool):
    """Merge the hits with the discs z = +half_height (``top``) and z = -half_height (``bottom``) of the given
    radius into the side hits ``t`` (R,) and ``normal`` (R, 3): the closer hit wins."""
    dz = torch.where(d[:, 2].abs() < 1e-12, torch.full_like(d[:, 2], 1e-12), d[:, 2])
    for sign, enabled in ((1.0, top), (-1.0, bottom)):
        if not enabled:
            continue
        t_cap = (sign * half_height - o[:, 2]) / dz
        p = o + d * t_cap[:, None]
        closer = (t_cap > EPS) & ((p[:, 0] ** 2 + p[:, 1] ** 2) <= radius**2) & (t_cap < t)
        t = torch.where(closer, t_cap, t)
        normal = torch.where(closer[:, None], torch.tensor([0.0, 0.0, sign], device=o.device).expand_as(normal), normal)
    return t, normal


def cylinder(o: torch.Tensor, d: torch.Tensor, dims: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A capped vertical cylinder: radius ``dims[:, 0]``, half height ``dims[:, 1]``."""
    r, h = dims[:, 0], dims[:, 1]
    a = d[:, 0] ** 2 + d[:, 1] ** 2
    b = o[:, 0] * d[:, 0] + o[:, 1] * d[:, 1]
    c = o[:, 0] ** 2 + o[:, 1] ** 2 - r * r
    disc = b * b - a * c
    sq = disc.clamp_min(0).sqrt()
    a_safe = torch.where(a < 1e-12, torch.full_like(a, 1e-12), a)
    t_side = INF * torch.ones_like(a)
    for root in ((-b - sq) / a_safe, (-b + sq) / a_safe):
        z = o[:, 2] + d[:, 2] * root
        ok = (disc > 0) & (a > 1e-12) & (root > EPS) & (z.abs() <= h)
        t_side = torch.where(ok & (root < t_side), root, t_side)
    p = o + d * torch.nan_to_num(t_side, posinf=0.0)[:, None]
    normal = torch.stack([p[:, 0], p[:, 1], torch.zeros_like(p[:, 0])], -1) / r[:, None]
    return _merge_caps(o, d, r, h, t_side, normal, top=True, bottom=True)


def cone(o: torch.Tensor, d: torch.Tensor, dims: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A vertical cone with base radius ``dims[:, 0]`` at z = -h and apex at z = +h (h = ``dims[:, 1]``)."""
    r, h = dims[:, 0], dims[:, 1]
    k = r / (2 * h)  # radius shrinks by k per unit height
    # x^2 + y^2 = (k (h - z))^2
    hz = h - o[:, 2]
    a = d[:, 0] ** 2 + d[:, 1] ** 2 - (k * d[:, 2]) ** 2
    b = o[:, 0] * d[:, 0] + o[:, 1] * d[:, 1] + k * k * hz * d[:, 2]
    c = o[:, 0] ** 2 + o[:, 1] ** 2 - (k * hz) ** 2
    disc = b * b - a * c
    sq = disc.clamp_min(0).sqrt()
    a_safe = torch.where(a.abs() < 1e-12, torch.full_like(a, 1e-12), a)
    t_side = INF * torch.ones_like(a)
    for root in ((-b - sq) / a_safe, (-b + sq) / a_safe):
        z = o[:, 2] + d[:, 2] * root
        ok = (disc > 0) & (root > EPS) & (z >= -h) & (z <= h)
        t_side = torch.where(ok & (root < t_side), root, t_side)
    p = o + d * torch.nan_to_num(t_side, posinf=0.0)[:, None]
    radial = torch.stack([p[:, 0], p[:, 1]], -1)
    radial = radial / radial.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    normal = torch.cat([radial, k[:, None].expand(-1, 1)], -1)
    normal = normal / normal.norm(dim=-1, keepdim=True)
    return _merge_caps(o, d, r, h, t_side, normal, top=False, bottom=True)


def torus(o: torch.Tensor, d: torch.Tensor, dims: torch.Tensor, steps: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    """A torus around the local z axis (major radius ``dims[:, 0]``, minor ``dims[:, 1]``), by sphere tracing
    from its bounding sphere (the quartic has no cheap closed form)."""
    big, small = dims[:, 0], dims[:, 1]
    dn = d / d.norm(dim=-1, keepdim=True)
    scale = d.norm(dim=-1)
    bound = torch.cat([(big + small)[:, None], torch.zeros_like(dims[:, :2])], -1)
    t_bound, _ = sphere(o, dn, bound)
    inside = o.norm(dim=-1) < big + small
    t = torch.where(inside, torch.zeros_like(t_bound), t_bound)
    active = torch.isfinite(t)
    t = torch.nan_to_num(t, posinf=0.0)
    hit = torch.zeros_like(active)
    for _ in range(steps):
        p = o + dn * t[:, None]
        q = torch.stack([p[:, :2].norm(dim=-1) - big, p[:, 2]], -1)
        dist = q.norm(dim=-1) - small
        hit = hit | (active & (dist < 1e-4))
        t = torch.where(active & ~hit, t + dist, t)
        active = active & ~hit & (t < (o.norm(dim=-1) + big + small + 1.0))
    p = o + dn * t[:, None]
    ring = p.clone()
    ring[:, 2] = 0
    ring = ring / ring[:, :2].norm(dim=-1, keepdim=True).clamp_min(1e-9) * big[:, None]
    normal = p - ring
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    t_out = torch.where(hit & (t > EPS), t / scale, torch.full_like(t, INF))
    return t_out, normal


INTERSECT = {"sphere": sphere, "box": box, "cylinder": cylinder, "cone": cone, "torus": torus}
