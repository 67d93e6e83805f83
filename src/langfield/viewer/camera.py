"""Between the browser's camera and langfield's.

The viewer (three.js through viser) reports a camera as a rotation quaternion ``wxyz``, a ``position``, a vertical
field of view and the viewport's aspect ratio, in the OpenCV convention (+z forward, +y down). langfield's cameras
look down −z with +y up (OpenGL / Blender / nerfstudio), so the two rotations differ by a flip of y and z.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from langfield.cameras import Cameras

#: camera axes: OpenCV (x right, y down, z forward) to OpenGL (x right, y up, z backward)
FLIP_YZ = np.diag([1.0, -1.0, -1.0])


def quaternion_to_matrix(wxyz: np.ndarray) -> np.ndarray:
    w, x, y, z = np.asarray(wxyz, dtype=np.float64) / np.linalg.norm(wxyz)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """The unit quaternion (w, x, y, z), w ≥ 0, of a rotation matrix (Shepperd's method: stable for any angle)."""
    m = np.asarray(rotation, dtype=np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(max(1.0 + m[i, i] - m[j, j] - m[k, k], 1e-12))
        q = [0.0, 0.0, 0.0, 0.0]
        q[0] = (m[k, j] - m[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (m[j, i] + m[i, j]) / s
        q[1 + k] = (m[k, i] + m[i, k]) / s
    q = np.array(q)
    return q if q[0] >= 0 else -q


def viewport_camera(wxyz, position, fov: float, aspect: float, height: int) -> Cameras:
    """One langfield camera for the browser's view, ``height`` pixels high and ``aspect`` × as wide."""
    height = max(1, int(height))
    width = max(1, int(round(height * aspect)))
    rotation = quaternion_to_matrix(np.asarray(wxyz)) @ FLIP_YZ
    c2w = np.concatenate([rotation, np.asarray(position, dtype=np.float64).reshape(3, 1)], axis=1)
    focal = 0.5 * height / math.tan(0.5 * fov)
    one = torch.ones(1, dtype=torch.float32)
    return Cameras(
        torch.from_numpy(c2w).float()[None],
        one * focal,
        one * focal,
        one * (width / 2),
        one * (height / 2),
        width,
        height,
    )


def viewer_pose(c2w: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(wxyz, position) of a langfield camera-to-world matrix (3, 4), in the viewer's convention."""
    m = c2w.detach().double().cpu().numpy()
    return matrix_to_quaternion(m[:, :3] @ FLIP_YZ), m[:, 3].copy()


def vertical_fov(cameras: Cameras, index: int = 0) -> float:
    return 2.0 * math.atan(0.5 * cameras.height / float(cameras.fy[index]))
