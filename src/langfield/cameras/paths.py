"""Camera paths for rendering videos: an orbit around the scene and a forward-facing spiral."""

from __future__ import annotations

import math

import torch

from langfield.cameras.cameras import Cameras, look_at


def scene_up(cameras: Cameras) -> torch.Tensor:
    """The world's up direction estimated as the mean camera up-vector (nerfstudio's convention)."""
    up = cameras.c2w[:, :, 1].mean(dim=0)
    return up / up.norm().clamp_min(1e-9)


def _with_intrinsics(reference: Cameras, c2w: torch.Tensor) -> Cameras:
    n = c2w.shape[0]
    return Cameras(
        c2w,
        reference.fx[:1].expand(n).clone(),
        reference.fy[:1].expand(n).clone(),
        reference.cx[:1].expand(n).clone(),
        reference.cy[:1].expand(n).clone(),
        reference.width,
        reference.height,
    )


def orbit_path(
    reference: Cameras,
    frames: int,
    center: torch.Tensor | None = None,
    radius: float | None = None,
    elevation_deg: float | None = None,
) -> Cameras:
    """``frames`` cameras on a circle around ``center``, looking at it, with the reference's intrinsics.

    Radius and elevation default to the mean of the reference cameras, the up axis to their mean up-vector.
    """
    if frames < 1:
        raise ValueError("frames must be at least 1")
    up = scene_up(reference)
    center = torch.zeros(3, dtype=reference.c2w.dtype) if center is None else center.to(reference.c2w.dtype)
    offsets = reference.origins - center
    if radius is None:
        radius = float(offsets.norm(dim=-1).mean())
    if elevation_deg is None:
        sin_el = (offsets @ up) / offsets.norm(dim=-1).clamp_min(1e-9)
        elevation_deg = math.degrees(float(torch.asin(sin_el.clamp(-1, 1)).mean()))
    # an orthonormal basis (a, b) of the plane perpendicular to up
    helper = torch.tensor([1.0, 0.0, 0.0], dtype=up.dtype)
    if abs(float(helper @ up)) > 0.9:
        helper = torch.tensor([0.0, 1.0, 0.0], dtype=up.dtype)
    a = torch.linalg.cross(up, helper, dim=-1)
    a = a / a.norm()
    b = torch.linalg.cross(up, a, dim=-1)
    theta = torch.linspace(0, 2 * math.pi, frames + 1, dtype=up.dtype)[:-1]
    el = math.radians(elevation_deg)
    ring = torch.cos(theta)[:, None] * a + torch.sin(theta)[:, None] * b
    eye = center + radius * (math.cos(el) * ring + math.sin(el) * up)
    return _with_intrinsics(reference, look_at(eye, center.expand_as(eye), up))


def spiral_path(reference: Cameras, frames: int, rotations: float = 2.0, depth: float | None = None) -> Cameras:
    """A forward-facing spiral around the average reference pose (LLFF's render path)."""
    if frames < 1:
        raise ValueError("frames must be at least 1")
    c2w = reference.c2w
    center = c2w[:, :, 3].mean(dim=0)
    forward = -c2w[:, :, 2].mean(dim=0)
    forward = forward / forward.norm()
    up = scene_up(reference)
    right = torch.linalg.cross(forward, up, dim=-1)
    right = right / right.norm()
    up = torch.linalg.cross(right, forward, dim=-1)
    spread = (c2w[:, :, 3] - center).abs()
    rx = float((spread @ right.abs()).max()) or 0.1
    ry = float((spread @ up.abs()).max()) or 0.1
    if depth is None:
        depth = max(1.0, 4.0 * max(rx, ry))
    focus = center + depth * forward
    theta = torch.linspace(0, 2 * math.pi * rotations, frames + 1, dtype=c2w.dtype)[:-1]
    eye = center + rx * torch.cos(theta)[:, None] * right + ry * torch.sin(theta)[:, None] * up
    eye = eye - 0.1 * depth * (torch.sin(theta * 0.5)[:, None] ** 2) * forward
    return _with_intrinsics(reference, look_at(eye, focus.expand_as(eye), up))
