"""Binary little-endian PLY point clouds with colours and any number of scalar properties."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from langfield.atomic import atomic_write
from langfield.data.ply import read_point_cloud

__all__ = ["read_point_cloud", "write_point_cloud"]


def write_point_cloud(
    path: Path, points: np.ndarray, colors: np.ndarray, scalars: dict[str, np.ndarray] | None = None
) -> None:
    """``points`` (N, 3) float, ``colors`` (N, 3) uint8, ``scalars`` name → (N,) float."""
    scalars = scalars or {}
    n = len(points)
    dtype = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    dtype += [(name, "<f4") for name in scalars]
    data = np.empty(n, dtype=dtype)
    data["x"], data["y"], data["z"] = points[:, 0], points[:, 1], points[:, 2]
    data["red"], data["green"], data["blue"] = colors[:, 0], colors[:, 1], colors[:, 2]
    for name, values in scalars.items():
        data[name] = values
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    header += ["property float x", "property float y", "property float z"]
    header += ["property uchar red", "property uchar green", "property uchar blue"]
    header += [f"property float {name}" for name in scalars]
    header.append("end_header")
    with atomic_write(path, "wb") as handle:
        handle.write(("\n".join(header) + "\n").encode("ascii"))
        handle.write(data.tobytes())
