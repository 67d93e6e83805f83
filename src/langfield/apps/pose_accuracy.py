"""How close recovered cameras are to the true ones: a similarity alignment (Umeyama) of the camera centres,
then each camera's rotation error (degrees) and centre error (as a fraction of the scene's size: the diagonal of
the true camera centres' bounding box)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from langfield.errors import LangfieldError


@dataclass
class Similarity:
    """x ↦ scale · rotation · x + translation."""

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def points(self, x: np.ndarray) -> np.ndarray:
        return self.scale * x @ self.rotation.T + self.translation

    def poses(self, c2w: np.ndarray) -> np.ndarray:
        """Camera-to-world matrices (N, 3|4, 4) moved by the similarity (rotation part stays orthonormal)."""
        out = np.array(c2w, dtype=np.float64)
        out[:, :3, :3] = self.rotation @ out[:, :3, :3]
        out[:, :3, 3] = self.points(out[:, :3, 3])
        return out

    def inverse(self) -> "Similarity":
        rotation = self.rotation.T
        return Similarity(1 / self.scale, rotation, -(rotation @ self.translation) / self.scale)


def umeyama(source: np.ndarray, target: np.ndarray) -> Similarity:
    """The least-squares similarity taking points ``source`` (N, 3) onto ``target`` (N, 3)."""
    if len(source) < 3:
        raise LangfieldError(f"a similarity alignment needs at least 3 cameras, got {len(source)}")
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    xs, xt = source - mu_s, target - mu_t
    u, singular, vt = np.linalg.svd(xt.T @ xs / len(source))
    flip = np.eye(3)
    flip[2, 2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rotation = u @ flip @ vt
    scale = float((singular * np.diag(flip)).sum() / (xs**2).sum(axis=1).mean())
    return Similarity(scale, rotation, mu_t - scale * rotation @ mu_s)


def rotation_errors(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles (degrees) between rotations (N, 3, 3)."""
    cos = (np.einsum("nij,nij->n", a, b) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def pose_errors(estimated: np.ndarray, true: np.ndarray) -> dict:
    """Errors of camera-to-world poses ``estimated`` (N, 3|4, 4, any world) against ``true`` (same cameras, same
    camera axes), after aligning the estimated centres to the true ones."""
    alignment = umeyama(estimated[:, :3, 3], true[:, :3, 3])
    aligned = alignment.poses(estimated)
    rotation = rotation_errors(aligned[:, :3, :3], true[:, :3, :3])
    centre = np.linalg.norm(aligned[:, :3, 3] - true[:, :3, 3], axis=1)
    size = float(np.linalg.norm(true[:, :3, 3].max(axis=0) - true[:, :3, 3].min(axis=0)))
    return {
        "cameras": len(true),
        "median_rotation_error_deg": float(np.median(rotation)),
        "max_rotation_error_deg": float(rotation.max()),
        "median_centre_error": float(np.median(centre)),
        "median_centre_error_fraction": float(np.median(centre) / size),
        "max_centre_error_fraction": float(centre.max() / size),
        "scene_size": size,
        "alignment": alignment,
    }
