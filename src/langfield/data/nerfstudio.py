"""The nerfstudio format: one ``transforms.json`` with ``fl_x, fl_y, cx, cy, w, h`` globally or per frame.

Poses are centred on the mean camera position and scaled so the cameras lie in [-1, 1]^3 (nerfstudio's
``auto_scale_poses``). The scene box is the box around the sparse points of ``ply_file_path`` where the dataset has
them (``langfield process`` writes ``sparse_pc.ply``; the scene is then scaled so that the box's longest side is 3,
as the Blender box), else [-1, 1]^3; either is scaled by ``scene_scale`` about its centre. With ``--downscale
2/4/8``, the ``images_N/`` copies are read where every frame has one. Splits come from the ``train_filenames`` /
``val_filenames`` / ``test_filenames`` keys where present.
"""

from __future__ import annotations

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
from langfield.data.jsonio import number, read_json, require, string_list
from langfield.errors import LangfieldError

INTRINSICS = ("fl_x", "fl_y", "cx", "cy", "w", "h")


def _number(value, where: str, key: str) -> float:
    result = number(value, where, key)
    if result <= 0:
        raise LangfieldError(f"{where}: field '{key}' must be a positive number, got {value!r}")
    return result


#: the sparse points' box: these percentiles per axis (outliers dropped); every side at least this fraction of the
#: longest (a capture of a table top has its points nearly on a plane; what stands on it must fit), then widened
#: by this fraction of the longest side, and never beyond this many camera-extent units from the centre (far
#: background points of open scenes)
POINT_PERCENTILES, POINT_MIN_SIDE, POINT_MARGIN, POINT_LIMIT = (0.5, 99.5), 0.5, 0.1, 3.0


#: the longest side of a scene box set by sparse points (the Blender box, [-1.5, 1.5]^3)
BOX_SIDE = 3.0


def points_box(points: np.ndarray, where: str) -> np.ndarray:
    """The (2, 3) scene box around normalised sparse points."""
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) < 8:
        raise LangfieldError(f"{where}: {len(points)} sparse points, too few to set the scene box")
    lo, hi = np.percentile(points, POINT_PERCENTILES, axis=0)
    longest = max(float((hi - lo).max()), 1e-6)
    grow = np.maximum(POINT_MIN_SIDE * longest - (hi - lo), 0) / 2 + POINT_MARGIN * longest
    return np.clip(np.stack([lo - grow, hi + grow]), -POINT_LIMIT, POINT_LIMIT)


def downscaled_copies(folder: Path, paths: list[Path], factor: int) -> list[Path] | None:
    """``images_N/NAME`` for every ``images/NAME`` frame (nerfstudio's downscaled copies), or None."""
    if factor not in (2, 4, 8):
        return None
    copies = []
    for path in paths:
        if path.parent.name != "images":
            return None
        copy = path.parent.parent / f"images_{factor}" / path.name
        if not copy.is_file():
            return None
        copies.append(copy)
    return copies


def parse_nerfstudio(config: DataConfig) -> Dataset:
    folder = Path(config.data)
    json_path = folder / "transforms.json"
    meta = read_json(json_path)
    frames = require(meta, "frames", str(json_path), list)
    if not frames:
        raise LangfieldError(f"{json_path}: 'frames' is empty")
    if config.max_views is not None:
        frames = frames[: config.max_views]
    paths, poses, intrinsics, object_index = [], [], [], []
    for i, frame in enumerate(frames):
        where = f"{json_path} frame {i}"
        if not isinstance(frame, dict):
            raise LangfieldError(f"{where}: expected an object")
        file_path = require(frame, "file_path", where, str)
        paths.append(frame_image(folder, file_path, where, config.allow_outside))
        poses.append(check_pose(require(frame, "transform_matrix", where), where))
        values = {}
        for key in INTRINSICS:
            if key in frame:
                values[key] = _number(frame[key], where, key)
            elif key in meta:
                values[key] = _number(meta[key], str(json_path), key)
        if "fl_x" not in values:
            raise LangfieldError(f"{where}: missing field 'fl_x' (neither in the frame nor at the top level)")
        intrinsics.append(values)
        object_index.append(frame_object(frame, where))

    copies = downscaled_copies(folder, paths, config.downscale)
    images, has_alpha = load_images(copies, 1) if copies else load_images(paths, config.downscale)
    n, h, w = images.shape[:3]
    fx, fy, cx, cy = [], [], [], []
    for values, path in zip(intrinsics, paths):
        # intrinsics refer to the full-size image; rescale them to the loaded size
        full_w = values.get("w", w * config.downscale)
        full_h = values.get("h", h * config.downscale)
        sx, sy = w / full_w, h / full_h
        fx.append(values["fl_x"] * sx)
        fy.append(values.get("fl_y", values["fl_x"]) * sy)
        cx.append(values.get("cx", full_w / 2) * sx)
        cy.append(values.get("cy", full_h / 2) * sy)

    c2w = np.stack(poses)
    centre = c2w[:, :, 3].mean(axis=0)
    c2w[:, :, 3] -= centre
    scale = 1.0 / max(float(np.abs(c2w[:, :, 3]).max()), 1e-9)
    c2w[:, :, 3] *= scale
    box = np.array([[-1.0] * 3, [1.0] * 3])
    if "ply_file_path" in meta:
        from langfield.data.ply import point_positions

        ply_path = require(meta, "ply_file_path", str(json_path), str)
        if not (folder / ply_path).is_file():
            raise LangfieldError(f"{json_path}: ply_file_path {ply_path!r}: no such file in {folder}")
        ply = frame_image(folder, ply_path, str(json_path), config.allow_outside)
        box = points_box((point_positions(ply) - centre) * scale, str(ply))
        # the scene's own size, whatever the capture's units: the box's longest side becomes that of the Blender
        # box, the scale every method's defaults were chosen at
        resize = BOX_SIDE / float((box[1] - box[0]).max())
        box, c2w[:, :, 3] = box * resize, c2w[:, :, 3] * resize
    middle = box.mean(axis=0)
    aabb = torch.from_numpy((box - middle) * config.scene_scale + middle).float()
    cameras = Cameras(
        torch.from_numpy(c2w).float(),
        torch.tensor(fx, dtype=torch.float32),
        torch.tensor(fy, dtype=torch.float32),
        torch.tensor(cx, dtype=torch.float32),
        torch.tensor(cy, dtype=torch.float32),
        w,
        h,
    )

    names = [str(f["file_path"]) for f in frames]
    split_keys = {k: meta.get(f"{k}_filenames") for k in ("train", "val", "test")}
    for k, listed in split_keys.items():
        if listed is not None:
            string_list(listed, str(json_path), f"{k}_filenames")
    has_files = split_keys["train"] is not None and (split_keys["test"] or split_keys["val"])
    if config.split == "files" and not has_files:
        raise LangfieldError(f"{json_path}: --split files, but no train_filenames/test_filenames lists")
    if config.split != "holdout" and has_files:
        test_names = set(split_keys["test"] or split_keys["val"] or [])
        train_names = set(split_keys["train"] or [])
        train = [i for i, name in enumerate(names) if name in train_names]
        test = [i for i, name in enumerate(names) if name in test_names]
    else:
        train, test = holdout_split(n, config.holdout_every)
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
        format="nerfstudio",
        filenames=names,
        objects=object_indices(object_index, str(json_path)),
    )
