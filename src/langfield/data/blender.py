"""The Blender / NeRF-synthetic format: ``transforms_{train,val,test}.json`` with ``camera_angle_x``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from langfield.cameras import Cameras
from langfield.data.config import DataConfig
from langfield.data.dataset import (
    Dataset,
    check_pose,
    frame_image,
    frame_object,
    holdout_split,
    load_images,
    near_far,
    object_indices,
)
from langfield.data.jsonio import number, read_json, require
from langfield.errors import LangfieldError

SPLIT_FILES = ("train", "val", "test")


def split_files(folder: Path) -> dict[str, Path]:
    return {s: folder / f"transforms_{s}.json" for s in SPLIT_FILES if (folder / f"transforms_{s}.json").is_file()}


def parse_blender(config: DataConfig) -> Dataset:
    folder = Path(config.data)
    files = split_files(folder)
    if not files:
        raise LangfieldError(f"{folder}: no transforms_train/val/test.json found")
    paths: list[Path] = []
    poses: list[np.ndarray] = []
    split_of: list[str] = []
    object_index: list = []
    focal_angle = None
    for split, json_path in files.items():
        meta = read_json(json_path)
        angle = number(require(meta, "camera_angle_x", str(json_path)), str(json_path), "camera_angle_x")
        if not 0 < angle < math.pi:
            raise LangfieldError(f"{json_path}: camera_angle_x must be in (0, pi), got {angle}")
        if focal_angle is not None and abs(angle - focal_angle) > 1e-6:
            raise LangfieldError(f"{json_path}: camera_angle_x {angle} differs from the other split files")
        focal_angle = angle
        frames = require(meta, "frames", str(json_path), list)
        for i, frame in enumerate(frames):
            where = f"{json_path} frame {i}"
            if not isinstance(frame, dict):
                raise LangfieldError(f"{where}: expected an object")
            file_path = require(frame, "file_path", where, str)
            poses.append(check_pose(require(frame, "transform_matrix", where), where))
            paths.append(frame_image(json_path.parent, file_path, where, config.allow_outside))
            split_of.append(split)
            object_index.append(frame_object(frame, where))
    if not paths:
        names = ", ".join(p.name for p in files.values())
        raise LangfieldError(f"{folder}: the split files ({names}) list no frames")
    if config.max_views is not None:
        keep = config.max_views
        paths, poses, split_of, object_index = paths[:keep], poses[:keep], split_of[:keep], object_index[:keep]

    images, has_alpha = load_images(paths, config.downscale)
    n, h, w = images.shape[:3]
    assert focal_angle is not None  # every split file read gave one
    focal = 0.5 * w / math.tan(0.5 * focal_angle)
    cameras = Cameras(
        torch.from_numpy(np.stack(poses)).float(),
        torch.full((n,), focal),
        torch.full((n,), focal),
        torch.full((n,), w / 2.0),
        torch.full((n,), h / 2.0),
        w,
        h,
    )
    eval_split = "test" if "test" in split_of else "val"
    use_files = config.split == "files" or (config.split == "auto" and "train" in split_of and eval_split in split_of)
    if use_files:
        train = [i for i, s in enumerate(split_of) if s == "train"]
        test = [i for i, s in enumerate(split_of) if s == eval_split]
    else:
        train, test = holdout_split(n, config.holdout_every)
    scale = 1.5 * config.scene_scale
    aabb = torch.tensor([[-scale] * 3, [scale] * 3])
    return Dataset(
        images=images,
        cameras=cameras,
        train_indices=train,
        test_indices=test,
        background=torch.tensor(config.background, dtype=torch.float32),
        aabb=aabb,
        **near_far(cameras, aabb),
        has_alpha=has_alpha,
        source=folder,
        format="blender",
        filenames=[str(p.relative_to(folder)) if p.is_relative_to(folder) else str(p) for p in paths],
        objects=object_indices(object_index, str(folder)),
    )
