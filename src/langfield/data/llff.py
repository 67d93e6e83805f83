"""The LLFF format: ``poses_bounds.npy`` (N × 17) and ``images/``, forward-facing captures.

Each row holds a 3×5 matrix (rotation columns down/right/back, translation, and height/width/focal) and the
near/far depth bounds. As in the NeRF reference code, poses are converted to the OpenGL convention, scaled so
that the nearest bound is 1/0.75, and re-centred on their average pose; the scene box encloses every view frustum
between the normalised bounds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from langfield.cameras import Cameras
from langfield.data.config import DataConfig
from langfield.data.dataset import IMAGE_EXTENSIONS, Dataset, frustum_aabb, holdout_split, load_images
from langfield.errors import LangfieldError


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def average_pose(c2w: np.ndarray) -> np.ndarray:
    centre = c2w[:, :, 3].mean(axis=0)
    z = _normalize(c2w[:, :, 2].sum(axis=0))
    up = c2w[:, :, 1].sum(axis=0)
    x = _normalize(np.cross(up, z))
    y = np.cross(z, x)
    return np.stack([x, y, z, centre], axis=1)


def parse_llff(config: DataConfig) -> Dataset:
    folder = Path(config.data)
    npy = folder / "poses_bounds.npy"
    try:
        array = np.load(npy, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise LangfieldError(f"{npy}: cannot read ({exc})") from None
    if array.ndim != 2 or array.shape[1] != 17 or array.shape[0] == 0:
        raise LangfieldError(f"{npy}: expected an array of shape (N, 17), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise LangfieldError(f"{npy}: contains non-finite values")
    image_dir = folder / "images"
    if not image_dir.is_dir():
        raise LangfieldError(f"{image_dir}: folder not found")
    paths = sorted(p for p in image_dir.iterdir() if p.suffix in IMAGE_EXTENSIONS)
    if len(paths) != array.shape[0]:
        raise LangfieldError(f"{image_dir}: {len(paths)} images, but {npy.name} has {array.shape[0]} poses")
    if config.max_views is not None:
        paths, array = paths[: config.max_views], array[: config.max_views]

    poses = array[:, :15].reshape(-1, 3, 5)
    bounds = array[:, 15:17]
    full_h, full_w, focal = poses[0, :, 4]
    # [down, right, back] -> [right, up, back]
    c2w = np.concatenate([poses[:, :, 1:2], -poses[:, :, 0:1], poses[:, :, 2:4]], axis=2)
    for i, rotation in enumerate(c2w[:, :, :3]):
        if not np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-2):
            raise LangfieldError(f"{npy}: pose {i} is not a rigid transform")
    scale = 1.0 / (bounds.min() * 0.75)
    c2w[:, :, 3] *= scale
    bounds = bounds * scale
    average = np.concatenate([average_pose(c2w), [[0, 0, 0, 1]]], axis=0)
    c2w = (np.linalg.inv(average) @ np.concatenate([c2w, np.tile([[[0, 0, 0, 1]]], (len(c2w), 1, 1))], axis=1))[:, :3]

    images, has_alpha = load_images(paths, config.downscale)
    n, h, w = images.shape[:3]
    f = focal * w / full_w
    cameras = Cameras(
        torch.from_numpy(c2w).float(),
        torch.full((n,), float(f)),
        torch.full((n,), float(focal * h / full_h)),
        torch.full((n,), w / 2.0),
        torch.full((n,), h / 2.0),
        w,
        h,
    )
    near, far = float(bounds.min() * 0.9), float(bounds.max() * 1.0)
    if config.split == "files":
        raise LangfieldError(f"{folder}: LLFF data has no split files; use --split holdout")
    train, test = holdout_split(n, config.holdout_every)
    return Dataset(
        images=images,
        cameras=cameras,
        train_indices=train,
        test_indices=test,
        background=torch.tensor(config.background, dtype=torch.float32),
        aabb=frustum_aabb(cameras, near, far) * config.scene_scale,
        near=near,
        far=far,
        has_alpha=has_alpha,
        source=folder,
        format="llff",
        filenames=[p.name for p in paths],
    )
