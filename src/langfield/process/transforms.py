"""A sparse model as a nerfstudio dataset: ``transforms.json`` (OpenGL camera axes, shared or per-frame pinhole
intrinsics of the undistorted images) and ``sparse_pc.ply``. The world is turned so that the cameras' mean up
direction is +z (as nerfstudio orients captures), the rotation recorded as ``applied_transform``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from langfield.atomic import write_json
from langfield.export.ply import write_point_cloud

#: OpenCV camera axes (x right, y down, z forward) to OpenGL's (x right, y up, z backward)
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0])


def camera_to_world(cam_from_world: np.ndarray) -> np.ndarray:
    """4×4 OpenGL camera-to-world of a 3×4 OpenCV world-to-camera."""
    rotation, translation = cam_from_world[:3, :3], cam_from_world[:3, 3]
    c2w = np.eye(4)
    c2w[:3, :3] = rotation.T @ OPENCV_TO_OPENGL
    c2w[:3, 3] = -rotation.T @ translation
    return c2w


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector ``a`` to unit vector ``b``."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    if c < -1 + 1e-9:  # opposite: half a turn about any axis orthogonal to a
        axis = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    skew = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + skew + skew @ skew / (1 + c)


def up_rotation(c2w: np.ndarray) -> np.ndarray:
    """The rotation that takes the cameras' mean up vector (OpenGL +y) to world +z."""
    up = c2w[:, :3, 1].mean(axis=0)
    if np.linalg.norm(up) < 1e-6:
        return np.eye(3)
    return rotation_between(up, np.array([0.0, 0.0, 1.0]))


def intrinsics(camera) -> dict[str, float | int]:
    """nerfstudio's pinhole intrinsics of an (undistorted) pycolmap camera."""
    fx, fy, cx, cy = (float(v) for v in camera.params[:4])
    return {"fl_x": fx, "fl_y": fy, "cx": cx, "cy": cy, "w": int(camera.width), "h": int(camera.height)}


def write_transforms(
    out: Path,
    file_names: list[str],
    cam_from_world: list[np.ndarray],
    cameras: list,
    points: np.ndarray,
    colors: np.ndarray,
    shared: bool,
    extra: dict | None = None,
) -> np.ndarray:
    """``out/transforms.json`` and ``out/sparse_pc.ply``; ``cameras`` are the undistorted pinhole cameras of
    the images in ``out/images/``. Returns the applied world rotation (3×3)."""
    c2w = np.stack([camera_to_world(m) for m in cam_from_world])
    turn = up_rotation(c2w)
    c2w[:, :3, :] = turn @ c2w[:, :3, :]
    points = points @ turn.T
    frames = []
    for name, pose, camera in zip(file_names, c2w, cameras):
        frame: dict = {"file_path": f"images/{name}", "transform_matrix": pose.tolist()}
        if not shared:
            frame.update(intrinsics(camera))
        frames.append(frame)
    meta: dict = {"camera_model": "PINHOLE"}
    if shared:
        meta.update(intrinsics(cameras[0]))
    applied = np.eye(4)[:3]
    applied[:, :3] = turn
    meta.update({"frames": frames, "ply_file_path": "sparse_pc.ply", "applied_transform": applied.tolist()})
    meta.update(extra or {})
    write_point_cloud(out / "sparse_pc.ply", points.astype(np.float32), colors.astype(np.uint8))
    write_json(out / "transforms.json", meta, indent=1)
    return turn
