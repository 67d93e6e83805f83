"""Camera paths for rendering videos: an orbit around the scene and a forward-facing spiral."""

from __future__ import annotations

import math

import torch

from langfield.cameras.cameras import Cameras, look_at


def scene_up(cameras: Cameras) -> torch.Tensor:
    """The world's up direction, estimated from the cameras.

    A camera without roll has its right axis perpendicular to the world's up, so up is the direction most
    perpendicular to all right axes (the least eigenvector of their scatter), signed like the cameras' up axes. This
    is exact for cameras around an object however few and unevenly spread they are, where the mean up vector
    (nerfstudio's estimate) tilts towards the side most cameras are on. When the right axes do not span a plane
    (forward-facing captures, a single camera) the mean up vector is used.
    """
    mean_up = cameras.c2w[:, :, 1].double().mean(dim=0)
    right = cameras.c2w[:, :, 0].double()
    values, vectors = torch.linalg.eigh(right.T @ right)
    if float(values[1]) > 0.05 * float(values[2]):
        up = vectors[:, 0] * (1.0 if float(vectors[:, 0] @ mean_up) >= 0 else -1.0)
    else:
        up = mean_up
    return (up / up.norm().clamp_min(1e-9)).to(cameras.c2w.dtype)


def with_intrinsics(reference: Cameras, c2w: torch.Tensor) -> Cameras:
    """Cameras at the poses ``c2w`` (N, 3, 4), all with the intrinsics and image size of ``reference``'s first."""
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


def _plane_basis(up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An orthonormal basis ``(a, b)`` of the plane perpendicular to the unit vector ``up`` (azimuth 0 along a)."""
    helper = torch.tensor([1.0, 0.0, 0.0], dtype=up.dtype, device=up.device)
    if abs(float(helper @ up)) > 0.9:
        helper = torch.tensor([0.0, 1.0, 0.0], dtype=up.dtype, device=up.device)
    a = torch.linalg.cross(up, helper, dim=-1)
    a = a / a.norm()
    return a, torch.linalg.cross(up, a, dim=-1)


def check_orbit_ranges(
    radius_range: tuple[float, float], elevation_range_deg: tuple[float, float], azimuth_range_deg: tuple[float, float]
) -> None:
    """ValueError unless each range is (low, high) with low <= high, elevation within [-90, 90] and radius > 0."""
    for name, (lo, hi) in (
        ("radius", radius_range),
        ("elevation", elevation_range_deg),
        ("azimuth", azimuth_range_deg),
    ):
        if not lo <= hi:
            raise ValueError(f"{name} range must be (low, high) with low <= high, got {(lo, hi)}")
    if not (-90.0 <= elevation_range_deg[0] and elevation_range_deg[1] <= 90.0):
        raise ValueError(f"elevation range must lie in [-90, 90] degrees, got {elevation_range_deg}")
    if radius_range[0] <= 0:
        raise ValueError(f"radius range must be positive, got {radius_range}")


def sample_orbit_poses(
    count: int,
    center: torch.Tensor,
    up: torch.Tensor,
    radius_range: tuple[float, float],
    elevation_range_deg: tuple[float, float],
    azimuth_range_deg: tuple[float, float],
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``count`` random camera-to-world matrices (count, 3, 4) looking at ``center``, upright about ``up``.

    Azimuth and radius are uniform in their ranges; elevation (degrees above the plane perpendicular to ``up``) is
    drawn so that the cameras are uniform over the area of that band of the sphere (uniform in sin(elevation)),
    not bunched at the pole. Elevation 90° (straight down) is allowed: the camera's up vector is then the azimuth
    direction, never degenerate.
    """
    check_orbit_ranges(radius_range, elevation_range_deg, azimuth_range_deg)
    dtype = up.dtype
    u = torch.rand(3, count, generator=generator, dtype=torch.float64).to(dtype)
    radius = radius_range[0] + (radius_range[1] - radius_range[0]) * u[0]
    s0, s1 = (math.sin(math.radians(e)) for e in elevation_range_deg)
    elevation = torch.asin((s0 + (s1 - s0) * u[1]).clamp(-1, 1))
    lo, hi = (math.radians(a) for a in azimuth_range_deg)
    azimuth = lo + (hi - lo) * u[2]
    up = (up / up.norm()).to(center.device)
    a, b = _plane_basis(up)
    ring = torch.cos(azimuth)[:, None].to(up) * a + torch.sin(azimuth)[:, None].to(up) * b
    el = elevation[:, None].to(up)
    outward = torch.cos(el) * ring + torch.sin(el) * up
    eye = center + radius[:, None].to(up) * outward
    camera_up = torch.cos(el) * up - torch.sin(el) * ring  # perpendicular to the view direction
    return look_at(eye, center.expand_as(eye), camera_up)


def orbit_cameras(
    azimuth_deg: torch.Tensor | float,
    elevation_deg: torch.Tensor | float,
    radius: torch.Tensor | float,
    fov_deg: torch.Tensor | float,
    resolution: int,
    center: torch.Tensor | None = None,
    up: torch.Tensor | None = None,
    front: torch.Tensor | None = None,
) -> Cameras:
    """Square pinhole cameras at given angles around ``center``, looking at it, upright about ``up``.

    Object-centred angles, as text-to-3D methods use them: azimuth 0 looks at the object's ``front`` (the camera
    stands on that side), growing counter-clockwise seen from above; elevation is degrees above the horizontal;
    ``fov_deg`` the full field of view. Defaults: centre at the origin, z up, front along -y (the procedural world's
    convention: a chair faces -y). All angle tensors are (N,) or broadcastable scalars.
    """
    dtype = torch.float32
    center = torch.zeros(3, dtype=dtype) if center is None else center.to(dtype)
    up = torch.tensor([0.0, 0.0, 1.0]) if up is None else up.to(dtype) / up.norm()
    front = torch.tensor([0.0, -1.0, 0.0]) if front is None else front.to(dtype)
    front = front - (front @ up) * up
    front = front / front.norm()
    side = torch.linalg.cross(up, front, dim=-1)  # azimuth +90: counter-clockwise about up
    az, el, r, fov = torch.broadcast_tensors(
        *(torch.as_tensor(v, dtype=dtype).reshape(-1) for v in (azimuth_deg, elevation_deg, radius, fov_deg))
    )
    az, el = torch.deg2rad(az)[:, None], torch.deg2rad(el)[:, None]
    ring = torch.cos(az) * front + torch.sin(az) * side
    eye = center + r[:, None] * (torch.cos(el) * ring + torch.sin(el) * up)
    camera_up = torch.cos(el) * up - torch.sin(el) * ring  # never parallel to the view direction, even at 90 degrees
    c2w = look_at(eye, center.expand_as(eye), camera_up)
    focal = 0.5 * resolution / torch.tan(0.5 * torch.deg2rad(fov))
    half = torch.full_like(focal, resolution / 2)
    return Cameras(c2w, focal, focal.clone(), half, half.clone(), resolution, resolution)


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
    a, b = _plane_basis(up)
    theta = torch.linspace(0, 2 * math.pi, frames + 1, dtype=up.dtype)[:-1]
    el = math.radians(elevation_deg)
    ring = torch.cos(theta)[:, None] * a + torch.sin(theta)[:, None] * b
    eye = center + radius * (math.cos(el) * ring + math.sin(el) * up)
    return with_intrinsics(reference, look_at(eye, center.expand_as(eye), up))


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
    return with_intrinsics(reference, look_at(eye, focus.expand_as(eye), up))
