"""Camera placement for the procedural world (z up, cameras looking at the table)."""

from __future__ import annotations

import math

import numpy as np
import torch

from langfield.cameras import Cameras, look_at

CAMERA_ANGLE_X = 0.6911112070083618  # the NeRF-synthetic field of view (about 40 degrees)
TARGET = (0.0, 0.0, 0.15)


def hemisphere_poses(views: int, radius: float, rng: np.random.Generator, elevation=(20.0, 65.0)) -> torch.Tensor:
    """``views`` camera-to-world matrices (V, 3, 4) spread by the golden angle in azimuth, random elevation."""
    golden = math.pi * (3 - math.sqrt(5))
    offset = rng.uniform(0, 2 * math.pi)
    eyes = []
    for i in range(views):
        azimuth = offset + i * golden
        el = math.radians(rng.uniform(*elevation))
        eyes.append(
            [
                radius * math.cos(el) * math.cos(azimuth),
                radius * math.cos(el) * math.sin(azimuth),
                radius * math.sin(el),
            ]
        )
    eye = torch.tensor(eyes, dtype=torch.float32)
    target = torch.tensor(TARGET).expand_as(eye)
    return look_at(eye, target, torch.tensor([0.0, 0.0, 1.0]))


def pinhole(c2w: torch.Tensor, resolution: int, angle_x: float = CAMERA_ANGLE_X) -> Cameras:
    n = c2w.shape[0]
    focal = 0.5 * resolution / math.tan(0.5 * angle_x)
    full = lambda v: torch.full((n,), float(v))  # noqa: E731
    return Cameras(c2w, full(focal), full(focal), full(resolution / 2), full(resolution / 2), resolution, resolution)
