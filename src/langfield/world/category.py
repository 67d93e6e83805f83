"""Object categories with continuous proportions, and their multi-view datasets (``langfield world category``).

A category (chair, table, mug) is a fixed structure of primitives whose sizes follow named shape parameters, each
with a range: a chair has a seat width, depth and height, a backrest height and a leg thickness. A category object
is a point in that shape space plus an appearance (one of the world's colours and a material). The dataset renders
every object alone, centred, under one fixed light, from its own hemisphere of cameras; every frame records which
object it shows (``object_index``), which is what conditional radiance fields (CLIP-NeRF) train on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from langfield.atomic import write_json
from langfield.errors import LangfieldError
from langfield.world.cameras import CAMERA_ANGLE_X, hemisphere_poses, pinhole
from langfield.world.dataset import check_dataset_options, save_rgba, supersampled
from langfield.world.objects import PartSpec, footprint, height
from langfield.world.renderer import object_parts, render_rays
from langfield.world.scene import Lighting, WorldObject
from langfield.world.vocabulary import COLORS, MATERIALS, Attributes, captions

Shape = dict[str, float]


def _chair(p: Shape) -> tuple[PartSpec, ...]:
    w, d, h, back, r = p["seat_width"], p["seat_depth"], p["seat_height"], p["back_height"], p["leg_radius"]
    leg = (h - 0.03) / 2
    return (
        PartSpec("box", (0, 0, h), (w, d, 0.03)),
        PartSpec("box", (0, d - 0.03, h + 0.03 + back), (w, 0.03, back)),
        *(
            PartSpec("cylinder", (sx * (w - r - 0.01), sy * (d - r - 0.01), leg), (r, leg, 0))
            for sx in (-1, 1)
            for sy in (-1, 1)
        ),
    )


def _table(p: Shape) -> tuple[PartSpec, ...]:
    w, d, h, r = p["top_width"], p["top_depth"], p["height"], p["leg_radius"]
    leg = (h - 0.03) / 2
    return (
        PartSpec("box", (0, 0, h), (w, d, 0.03)),
        *(
            PartSpec("cylinder", (sx * (w - r - 0.02), sy * (d - r - 0.02), leg), (r, leg, 0))
            for sx in (-1, 1)
            for sy in (-1, 1)
        ),
    )


def _mug(p: Shape) -> tuple[PartSpec, ...]:
    r, half, handle = p["radius"], p["height"] / 2, p["handle_size"]
    return (
        PartSpec("cylinder", (0, 0, half), (r, half, 0)),
        PartSpec("torus", (r + 0.02, 0, half + 0.01), (handle, 0.025, 0), upright=True),
    )


@dataclass(frozen=True)
class Category:
    name: str
    parameters: dict[str, tuple[float, float]]  # name: (low, high), in the world's units at size 1
    build: Callable[[Shape], tuple[PartSpec, ...]]

    def sample(self, rng: np.random.Generator) -> Shape:
        return {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in self.parameters.items()}

    def check(self, shape: Shape) -> None:
        for key, (lo, hi) in self.parameters.items():
            if key not in shape:
                raise LangfieldError(f"{self.name}: shape parameter '{key}' is missing")
            if not lo <= shape[key] <= hi:
                raise LangfieldError(f"{self.name}: {key} must be in [{lo}, {hi}], got {shape[key]}")


CATEGORIES: dict[str, Category] = {
    "chair": Category(
        "chair",
        {
            "seat_width": (0.14, 0.28),
            "seat_depth": (0.14, 0.24),
            "seat_height": (0.15, 0.35),
            "back_height": (0.08, 0.22),
            "leg_radius": (0.015, 0.045),
        },
        _chair,
    ),
    "table": Category(
        "table",
        {"top_width": (0.2, 0.4), "top_depth": (0.12, 0.28), "height": (0.15, 0.4), "leg_radius": (0.015, 0.04)},
        _table,
    ),
    "mug": Category("mug", {"radius": (0.09, 0.18), "height": (0.16, 0.44), "handle_size": (0.05, 0.11)}, _mug),
}
#: one fixed light for a whole category dataset: appearance codes explain colour, not lighting
LIGHTING = Lighting((0.5, -0.5, math.sqrt(0.5)), 1.0, 0.3)
CAMERA_DISTANCE = 1.6
TARGET_HEIGHT = 0.35


def get_category(name: str) -> Category:
    if name not in CATEGORIES:
        raise LangfieldError(f"unknown category '{name}' (available: {', '.join(CATEGORIES)})")
    return CATEGORIES[name]


@dataclass(frozen=True)
class CategoryObject:
    category: str
    shape: Shape
    color: str
    material: str

    def world_object(self) -> WorldObject:
        category = get_category(self.category)
        category.check(self.shape)
        return WorldObject(
            1,
            Attributes(self.category, self.color, self.material, "medium"),
            (0.0, 0.0),
            0.0,
            category.build(self.shape),
        )

    def as_dict(self) -> dict:
        return {"category": self.category, "shape": self.shape, "color": self.color, "material": self.material}


def sample_objects(category: str, count: int, seed: int) -> list[CategoryObject]:
    """``count`` objects of ``category``: shape parameters uniform in their ranges, colour and material uniform."""
    cat = get_category(category)
    if count < 1:
        raise LangfieldError(f"--objects must be at least 1, got {count}")
    out = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        out.append(
            CategoryObject(
                category,
                cat.sample(rng),
                list(COLORS)[rng.integers(len(COLORS))],
                list(MATERIALS)[rng.integers(len(MATERIALS))],
            )
        )
    return out


def render_object(obj: CategoryObject, cameras, background=(1.0, 1.0, 1.0)) -> dict[str, torch.Tensor]:
    """rgb (V, H, W, 3) and alpha (V, H, W) of one object seen by every camera of ``cameras``."""
    parts = object_parts([obj.world_object()])
    pixels = cameras.height * cameras.width
    image = torch.arange(len(cameras)).repeat_interleave(pixels)
    origins, directions = cameras.pixel_rays(image, torch.arange(pixels).repeat(len(cameras)))
    zeros = torch.zeros_like(image)  # one light and background for every view
    out = render_rays(
        parts,
        origins,
        directions,
        zeros,
        torch.tensor([LIGHTING.direction]),
        torch.tensor([LIGHTING.intensity]),
        torch.tensor([LIGHTING.ambient]),
        torch.tensor([background]),
    )
    shape = (len(cameras), cameras.height, cameras.width)
    return {"rgb": out["rgb"].reshape(*shape, 3), "alpha": out["alpha"].reshape(shape)}


def object_cameras(views: int, resolution: int, rng: np.random.Generator):
    """Cameras on a hemisphere around a category object (elevation 10–60°, all azimuths)."""
    c2w = hemisphere_poses(views, CAMERA_DISTANCE, rng, elevation=(10.0, 60.0))
    c2w[:, 2, 3] += TARGET_HEIGHT - 0.15  # hemisphere_poses aims at the table-top target; lift to the object's middle
    return pinhole(c2w, resolution, CAMERA_ANGLE_X)


def write_category_dataset(
    out: Path,
    category: str,
    objects: int,
    views: int,
    resolution: int,
    seed: int = 0,
    holdout_every: int = 8,
    supersample: int = 2,
    progress: bool = True,
) -> list[CategoryObject]:
    """Every object from ``views`` cameras of its own (Blender format, one ``object_index`` per frame; each
    object's views with index ``i % holdout_every == 0`` go to the test split) and ``objects.json``."""
    from langfield.ui import task_bar

    check_dataset_options(views, resolution, supersample)
    items = sample_objects(category, objects, seed)
    out = Path(out)
    frames: dict[str, list[dict]] = {"train": [], "test": []}
    with task_bar(f"rendering {objects} {category}s x {views} views", objects, progress) as advance:
        for index, obj in enumerate(items):
            cameras = object_cameras(views, resolution * supersample, np.random.default_rng([seed, index, 1]))
            rendered = render_object(obj, cameras)
            filtered = supersampled(
                [{"rgb": rendered["rgb"][v], "alpha": rendered["alpha"][v]} for v in range(views)], supersample
            )
            for v, view in enumerate(filtered):
                split = "test" if holdout_every > 0 and v % holdout_every == 0 else "train"
                name = f"o{index:04d}_v{v:03d}"
                (out / split).mkdir(parents=True, exist_ok=True)
                save_rgba(out / split / f"{name}.png", view)
                pose = torch.cat([cameras.c2w[v], torch.tensor([[0.0, 0.0, 0.0, 1.0]])]).tolist()
                frames[split].append(
                    {"file_path": f"./{split}/{name}", "transform_matrix": pose, "object_index": index}
                )
            advance()
    for split, listed in frames.items():
        write_json(out / f"transforms_{split}.json", {"camera_angle_x": CAMERA_ANGLE_X, "frames": listed}, indent=1)
    cat = get_category(category)
    description = {
        "category": category,
        "object_count": objects,
        "views": views,
        "resolution": resolution,
        "seed": seed,
        "parameters": {k: list(v) for k, v in cat.parameters.items()},
        "lighting": {
            "direction": list(LIGHTING.direction),
            "intensity": LIGHTING.intensity,
            "ambient": LIGHTING.ambient,
        },
        "objects": [
            {
                "index": i,
                **o.as_dict(),
                "height": height(cat.build(o.shape)),
                "footprint": footprint(cat.build(o.shape)),
                "captions": captions(Attributes(category, o.color, o.material, "medium"), "train"),
            }
            for i, o in enumerate(items)
        ],
    }
    write_json(out / "objects.json", description, indent=1)
    return items
