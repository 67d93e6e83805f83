"""Turntables of object-centred runs (text-to-3D, edits): frames around the object and a contact sheet."""

from __future__ import annotations

import numpy as np
import torch

from langfield.cameras import orbit_cameras
from langfield.core import Model
from langfield.export.images import to_uint8


@torch.no_grad()
def turntable(
    model: Model,
    frames: int,
    elevation: float,
    radius: float,
    fov: float,
    resolution: int,
    start_azimuth: float = 0.0,
    output: str = "rgb",
    center: torch.Tensor | None = None,
) -> list[np.ndarray]:
    """``frames`` uint8 renders (H, W, 3) at evenly spaced azimuths from the object's front (0°), looking at
    ``center`` (default: the origin)."""
    azimuth = start_azimuth + torch.arange(frames) * (360.0 / frames)
    cameras = orbit_cameras(azimuth, torch.tensor(elevation), radius, fov, resolution, center=center)
    images = []
    for i in range(frames):
        out = model.render_camera(cameras, i, outputs=("rgb", "opacity"))
        images.append(to_uint8(out[output] if output == "rgb" else out[output][..., None].expand(-1, -1, 3)))
    return images


def contact_sheet(rows: list[list[np.ndarray]], gap: int = 2, fill: int = 255) -> np.ndarray:
    """Rows of equally sized images in one image, separated by ``gap`` pixels of ``fill``."""
    h, w = rows[0][0].shape[:2]
    cols = max(len(r) for r in rows)
    sheet = np.full((len(rows) * (h + gap) - gap, cols * (w + gap) - gap, 3), fill, np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            sheet[i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = image
    return sheet
