"""What a model knows of its scene, saved with every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from langfield.cameras import Cameras


@dataclass
class SceneInfo:
    """What a model needs to know of its scene, saved with every checkpoint so that a run can be rendered and
    exported without its dataset."""

    aabb: torch.Tensor  # (2, 3)
    near: float
    far: float
    background: torch.Tensor  # (3,)
    cameras: Cameras  # the training cameras (for camera paths)
    view_objects: torch.Tensor | None = None  # category datasets: the object each training view shows

    @staticmethod
    def from_dataset(dataset) -> "SceneInfo":
        return SceneInfo(
            dataset.aabb.clone(),
            dataset.near,
            dataset.far,
            dataset.background.clone(),
            dataset.cameras[dataset.train_indices],
            dataset.objects[dataset.train_indices].clone() if dataset.objects is not None else None,
        )

    def state(self) -> dict:
        c = self.cameras
        return {
            "aabb": self.aabb,
            "near": self.near,
            "far": self.far,
            "background": self.background,
            "c2w": c.c2w,
            "intrinsics": torch.stack([c.fx, c.fy, c.cx, c.cy], dim=-1),
            "size": [c.width, c.height],
            **({"view_objects": self.view_objects} if self.view_objects is not None else {}),
        }

    @staticmethod
    def from_state(state: dict) -> "SceneInfo":
        fx, fy, cx, cy = state["intrinsics"].unbind(-1)
        w, h = state["size"]
        cameras = Cameras(state["c2w"], fx, fy, cx, cy, int(w), int(h))
        return SceneInfo(
            state["aabb"],
            float(state["near"]),
            float(state["far"]),
            state["background"],
            cameras,
            state.get("view_objects"),
        )
