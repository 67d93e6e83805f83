"""Geometry from a trained field: a marching-cubes mesh with vertex colours, and a coloured point cloud from
rendered depth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from langfield.atomic import write_bytes
from langfield.core import Model
from langfield.errors import LangfieldError
from langfield.resources import require_memory


def lattice_shape(aabb: torch.Tensor, resolution: int) -> list[int]:
    """Lattice points per axis: ``resolution`` along the longest side of ``aabb``, the same spacing on the others."""
    extent = aabb[1] - aabb[0]
    voxel = float(extent.max()) / (resolution - 1)
    return [max(2, int(round(float(e) / voxel)) + 1) for e in extent]


@torch.no_grad()
def density_volume(model: Model, aabb: torch.Tensor, resolution: int, chunk: int = 1 << 18) -> np.ndarray:
    """Density sampled on a ``resolution``-per-longest-axis lattice spanning ``aabb``, slab by slab along x (only
    the float32 volume itself is ever whole in memory)."""
    shape = lattice_shape(aabb, resolution)
    axes = [torch.linspace(float(aabb[0, k]), float(aabb[1, k]), shape[k]) for k in range(3)]
    device = model.background.device
    volume = np.empty(shape, dtype=np.float32)
    plane = torch.stack(torch.meshgrid(axes[1], axes[2], indexing="ij"), dim=-1).reshape(-1, 2)
    slab = max(1, chunk // len(plane))
    for x0 in range(0, shape[0], slab):
        xs = axes[0][x0 : x0 + slab]
        points = torch.cat([xs.repeat_interleave(len(plane))[:, None], plane.repeat(len(xs), 1)], dim=1)
        values = torch.cat(
            [model.density(points[i : i + chunk].to(device)).cpu() for i in range(0, len(points), chunk)]
        )
        volume[x0 : x0 + len(xs)] = values.reshape(len(xs), shape[1], shape[2]).numpy()
    return volume


@torch.no_grad()
def extract_mesh(model: Model, aabb: torch.Tensor, resolution: int = 256, threshold: float | None = None):
    """Marching cubes on the density at ``threshold``; vertex colours are the field's colour seen from outside.

    ``threshold=None`` picks half the 99.5th percentile of the sampled density: how dense a trained field gets
    depends on the method and the length of training, so a fixed level fits some runs and misses others.
    """
    import trimesh
    from skimage.measure import marching_cubes

    shape = lattice_shape(aabb, resolution)
    # the volume (4 B a point) and marching cubes' working arrays (about three times as much)
    require_memory(16 * float(np.prod(shape)), f"a {'x'.join(map(str, shape))} mesh lattice", "lower --resolution")
    volume = density_volume(model, aabb, resolution)
    lo, hi = float(volume.min()), float(volume.max())
    if threshold is None:
        threshold = 0.5 * float(np.percentile(volume, 99.5))
    if not lo < threshold < hi:
        raise LangfieldError(
            f"no surface at density threshold {threshold} (the field's density ranges {lo:.3g}..{hi:.3g}); "
            "choose --threshold inside that range"
        )
    spacing = ((aabb[1] - aabb[0]).numpy() / (np.array(volume.shape) - 1)).tolist()
    vertices, faces, normals, _ = marching_cubes(volume, level=threshold, spacing=spacing)
    vertices = vertices + aabb[0].numpy()
    device = model.background.device
    v = torch.from_numpy(vertices.copy()).float()
    n = torch.from_numpy(normals.copy()).float()
    n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    # normals point towards lower density (outwards): look inwards, sample just inside the surface
    inside = v - n * 0.5 * min(spacing)
    colors = torch.cat(
        [
            model.color(inside[i : i + 65536].to(device), -n[i : i + 65536].to(device)).cpu()
            for i in range(0, len(v), 65536)
        ]
    )
    rgba = np.concatenate(
        [(colors.numpy() * 255).round().astype(np.uint8), np.full((len(v), 1), 255, np.uint8)], axis=1
    )
    # skimage orders triangles so that the normal points to lower values; flip for outward-facing winding
    return trimesh.Trimesh(vertices=vertices, faces=faces[:, ::-1], vertex_colors=rgba, process=False)


@torch.no_grad()
def extract_points(
    model: Model, cameras, max_points: int = 200_000, min_opacity: float = 0.9, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Surface points (expected depth) and rendered colours of well-covered pixels of the given cameras."""
    points, colors = [], []
    for i in range(len(cameras)):
        out = model.render_camera(cameras, i)
        origins, directions = cameras.image_rays(i)
        mask = out["opacity"].reshape(-1).cpu() > min_opacity
        depth = out["depth"].reshape(-1, 1).cpu()
        points.append((origins + directions * depth)[mask])
        colors.append(out["rgb"].reshape(-1, 3).cpu()[mask])
    points_t, colors_t = torch.cat(points), torch.cat(colors)
    if len(points_t) == 0:
        raise LangfieldError(f"no rendered pixel reaches opacity {min_opacity}; nothing to export")
    if len(points_t) > max_points:
        keep = torch.randperm(len(points_t), generator=torch.Generator().manual_seed(seed))[:max_points]
        points_t, colors_t = points_t[keep], colors_t[keep]
    return points_t.numpy(), (colors_t.clamp(0, 1).numpy() * 255).round().astype(np.uint8)


def save_mesh(mesh, path: Path) -> None:
    """A trimesh mesh in the format of ``path``'s suffix (glb, obj, ply), written atomically."""
    path = Path(path)
    data = mesh.export(file_type=path.suffix.lstrip(".").lower())
    write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)
