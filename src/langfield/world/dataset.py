"""``langfield world scene``: a multi-view dataset of a random scene in the Blender format, with exact masks
(object ids per pixel) and ``objects.json`` (attributes, captions, 3D boxes)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from langfield.atomic import write_image, write_json
from langfield.cameras import look_at
from langfield.errors import LangfieldError
from langfield.world.cameras import CAMERA_ANGLE_X, TARGET, hemisphere_poses, pinhole
from langfield.world.renderer import TABLE_ID, render_rays, scene_parts
from langfield.world.scene import Scene, random_scene
from langfield.world.vocabulary import captions

CAMERA_RADIUS = 3.6


def supersampled(views: list[dict[str, torch.Tensor]], factor: int) -> list[dict[str, torch.Tensor]]:
    """Box-filter views rendered at ``factor`` times the resolution (area sampling, as a camera integrates over
    a pixel). Colour is averaged premultiplied; ids and depth (where the views have them) come from one sample near
    each pixel's centre, so masks and depth stay exact and agree with each other."""
    if factor == 1:
        return views
    out = []
    for view in views:
        h, w = view["alpha"].shape[0] // factor, view["alpha"].shape[1] // factor
        alpha = view["alpha"].reshape(h, factor, w, factor).mean(dim=(1, 3))
        premultiplied = (view["rgb"] * view["alpha"][..., None]).reshape(h, factor, w, factor, 3).mean(dim=(1, 3))
        rgb = torch.where(
            alpha[..., None] > 0,
            premultiplied / alpha[..., None].clamp_min(1e-6),
            view["rgb"][factor // 2 :: factor, factor // 2 :: factor],
        )
        centre = {k: view[k][factor // 2 :: factor, factor // 2 :: factor] for k in ("ids", "depth") if k in view}
        out.append({"rgb": rgb, "alpha": alpha, **centre})
    return out


def render_views(scene: Scene, cameras, chunk: int = 1 << 16) -> list[dict[str, torch.Tensor]]:
    """Render every camera of ``cameras``: rgb (H, W, 3), alpha, depth and ids (H, W)."""
    parts = scene_parts(scene)
    light = torch.tensor([scene.lighting.direction])
    intensity = torch.tensor([scene.lighting.intensity])
    ambient = torch.tensor([scene.lighting.ambient])
    background = torch.tensor([scene.background])
    views = []
    for i in range(len(cameras)):
        o, d = cameras.image_rays(i)
        pieces = [
            render_rays(
                parts,
                o[s : s + chunk],
                d[s : s + chunk],
                torch.zeros(len(o[s : s + chunk]), dtype=torch.long),
                light,
                intensity,
                ambient,
                background,
                textured=scene.textured,
            )
            for s in range(0, len(o), chunk)
        ]
        out = {k: torch.cat([p[k] for p in pieces]) for k in pieces[0]}
        h, w = cameras.height, cameras.width
        views.append({k: v.reshape(h, w, -1).squeeze(-1) for k, v in out.items()})
    return views


def save_rgba(path: Path, view: dict) -> None:
    rgba = torch.cat([view["rgb"], view["alpha"][..., None]], dim=-1)
    array = (rgba.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
    write_image(path, Image.fromarray(array, "RGBA"))


def check_dataset_options(views: int, resolution: int, supersample: int) -> None:
    if views < 2:
        raise LangfieldError(f"--views must be at least 2 (one training and one test view), got {views}")
    if resolution < 8:
        raise LangfieldError(f"--resolution must be at least 8, got {resolution}")
    if supersample < 1:
        raise LangfieldError(f"--supersample must be at least 1, got {supersample}")


def write_scene_dataset(
    out: Path,
    seed: int,
    objects: int,
    views: int,
    resolution: int,
    holdout_every: int = 8,
    background: str = "white",
    kinds=None,
    colors=None,
    supersample: int = 2,
) -> Scene:
    """Render ``views`` views of ``random_scene(seed, objects)`` into ``out`` (Blender format; views with
    index ``i % holdout_every == 0`` go to the test split)."""
    check_dataset_options(views, resolution, supersample)
    scene = random_scene(seed, objects, kinds=kinds, colors=colors, background=background)
    rng = np.random.default_rng([seed, 1])
    c2w = hemisphere_poses(views, CAMERA_RADIUS, rng)
    rendered = supersampled(render_views(scene, pinhole(c2w, resolution * supersample)), supersample)
    out = Path(out)
    splits = {"train": [], "test": []}
    visible = {o.id: 0 for o in scene.objects}
    for i, view in enumerate(rendered):
        split = "test" if holdout_every > 0 and i % holdout_every == 0 else "train"
        name = f"r_{i}"
        (out / split).mkdir(parents=True, exist_ok=True)
        (out / "masks" / split).mkdir(parents=True, exist_ok=True)
        save_rgba(out / split / f"{name}.png", view)
        write_image(out / "masks" / split / f"{name}.png", Image.fromarray(view["ids"].numpy().astype(np.uint8), "L"))
        pose = torch.cat([c2w[i], torch.tensor([[0.0, 0.0, 0.0, 1.0]])]).tolist()
        splits[split].append(
            {"file_path": f"./{split}/{name}", "mask_path": f"./masks/{split}/{name}.png", "transform_matrix": pose}
        )
        if split == "train":
            for obj_id in view["ids"].unique().tolist():
                if obj_id in visible:
                    visible[obj_id] += 1
    hidden = [k for k, v in visible.items() if v == 0]
    if hidden:
        raise LangfieldError(
            f"objects {hidden} are not visible in any training view; use more --views or another --seed"
        )
    for split, frames in splits.items():
        write_json(out / f"transforms_{split}.json", {"camera_angle_x": CAMERA_ANGLE_X, "frames": frames}, indent=1)
    description = {
        "seed": seed,
        "table_id": TABLE_ID,
        "background": list(scene.background),
        "lighting": {
            "direction": list(scene.lighting.direction),
            "intensity": scene.lighting.intensity,
            "ambient": scene.lighting.ambient,
        },
        "objects": [
            {
                "id": o.id,
                "attributes": o.attributes.as_dict(),
                "captions": {"train": captions(o.attributes, "train"), "eval": captions(o.attributes, "eval")},
                "bbox": o.bbox(),
                "position": list(o.position),
                "yaw": o.yaw,
                "training_views_visible": visible[o.id],
            }
            for o in scene.objects
        ],
    }
    write_json(out / "objects.json", description, indent=1)
    return scene


def orbit_poses(frames: int, radius: float = CAMERA_RADIUS, elevation_deg: float = 35.0, turns: float = 1.0):
    """Camera-to-world matrices (F, 3, 4) of a circular orbit around the table at one elevation, as a hand-held
    video walking once around it."""
    azimuth = torch.arange(frames, dtype=torch.float64) / frames * 2 * math.pi * turns
    el = math.radians(elevation_deg)
    eye = torch.stack(
        [radius * math.cos(el) * torch.cos(azimuth), radius * math.cos(el) * torch.sin(azimuth),
         torch.full_like(azimuth, radius * math.sin(el))], dim=-1
    ).float()  # fmt: skip
    return look_at(eye, torch.tensor(TARGET).expand_as(eye), torch.tensor([0.0, 0.0, 1.0]))


def orbit_frames(scene: Scene, c2w: torch.Tensor, resolution: int, supersample: int = 2):
    """uint8 RGB frames (H, W, 3) of ``scene`` seen from ``c2w``, one at a time (a generator)."""
    check_dataset_options(2, resolution, supersample)
    for i in range(len(c2w)):
        view = supersampled(render_views(scene, pinhole(c2w[i : i + 1], resolution * supersample)), supersample)[0]
        yield (view["rgb"].clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
