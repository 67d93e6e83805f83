"""Geometry from a trained field: a marching-cubes mesh with vertex colours, and a coloured point cloud from
rendered depth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from langfield.errors import LangfieldError
from langfield.methods.base import Model


@torch.no_grad()
def density_volume(model: Model, aabb: torch.Tensor, resolution: int, chunk: int = 1 << 18) -> np.ndarray:
    """Density sampled on a ``resolution``-per-longest-axis lattice spanning ``aabb``."""
    extent = aabb[1] - aabb[0]
    voxel = float(extent.max()) / (resolution - 1)
    shape = [max(2, int(round(float(e) / voxel)) + 1) for e in extent]
    axes = [torch.linspace(float(aabb[0, k]), float(aabb[1, k]), shape[k]) for k in range(3)]
    points = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    device = model.background.device
    values = torch.cat([model.density(points[i : i + chunk].to(device)).cpu() for i in range(0, len(points), chunk)])
    return values.reshape(shape).numpy()


@torch.no_grad()
def extract_mesh(model: Model, aabb: torch.Tensor, resolution: int = 256, threshold: float | None = None):
    """Marching cubes on the density at ``threshold``; vertex colours are the field's colour seen from outside.

    ``threshold=None`` picks half the 99.5th percentile of the sampled density: how dense a trained field gets
    depends on the method and the length of training, so a fixed level fits some runs and misses others.
    """
    from skimage.measure import marching_cubes

    import trimesh

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
        [model.color(inside[i : i + 65536].to(device), -n[i : i + 65536].to(device)).cpu() for i in range(0, len(v), 65536)]
    )
    rgba = np.concatenate([(colors.numpy() * 255).round().astype(np.uint8), np.full((len(v), 1), 255, np.uint8)], axis=1)
    # skimage orders triangles so that the normal points to lower values; flip for outward-facing winding
    return trimesh.Trimesh(vertices=vertices, faces=faces[:, ::-1], vertex_colors=rgba, process=False)


@torch.no_grad()
def extract_points(model: Model, cameras, max_points: int = 200_000, min_opacity: float = 0.9, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.export(path)
