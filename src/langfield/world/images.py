"""Labelled images for training and evaluating the embedded models, streamed from a seed.

- ``object_images``: one object per image (random kind, colour, material, size, yaw, camera, lighting and
  background grey level), rendered in batches of same-kind objects;
- ``crop_images``: square crops of multi-object table-top scenes around one object, labelled with the object that
  covers most of the crop (the *dominant* object), together with every object of the scene;
- ``background_crops``: crops of the same kind of scenes where no object covers more than 5 % of the crop (table
  top, background): ``attributes`` is None. The embedded encoder learns them as negatives, so that a query for "a
  white cylinder" is not answered by white background.

Image ``i`` of seed ``s`` depends only on ``(s, i)``: streams are deterministic and can be split across workers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from langfield.atomic import atomic_write, write_image
from langfield.cameras import look_at
from langfield.errors import LangfieldError
from langfield.world.cameras import hemisphere_poses, pinhole
from langfield.world.dataset import CAMERA_RADIUS, render_views
from langfield.world.objects import height
from langfield.world.renderer import TABLE_ID, object_parts, render_rays
from langfield.world.scene import WorldObject, check_names, random_attributes, random_lighting, random_scene
from langfield.world.vocabulary import Attributes, captions

OBJECT_FOV = 0.6


@dataclass
class LabelledImage:
    index: int
    image: torch.Tensor  # (H, W, 3) float in [0, 1]
    attributes: Attributes | None  # None: no object dominates (background_crops)
    scene_objects: list[Attributes] = field(default_factory=list)  # crops: every object of the scene
    #: object images: the camera's (azimuth, elevation) in degrees relative to the object's front (its -y axis:
    #: a chair faces it; azimuth 0 looks at the front, 180 at the back, counter-clockwise seen from above)
    view: tuple[float, float] | None = None

    def label(self, file: str) -> dict:
        assert self.attributes is not None, "labelled images show an object"
        entry = {
            "file": file,
            "attributes": self.attributes.as_dict(),
            "captions": captions(self.attributes, "train"),
            "eval_captions": captions(self.attributes, "eval"),
        }
        if self.scene_objects:
            entry["scene_objects"] = [a.as_dict() for a in self.scene_objects]
        return entry


def _check(count: int, resolution: int) -> None:
    if count < 1:
        raise LangfieldError(f"--count must be at least 1, got {count}")
    if resolution < 8:
        raise LangfieldError(f"--resolution must be at least 8, got {resolution}")


def object_images(
    seed: int,
    count: int,
    resolution: int = 64,
    kinds=None,
    colors=None,
    batch: int = 256,
    elevation: tuple[float, float] = (5.0, 55.0),
) -> Iterator[LabelledImage]:
    """``count`` single-object images, in index order; camera elevation uniform in ``elevation`` (degrees)."""
    _check(count, resolution)
    check_names(kinds, colors)
    for start in range(0, count, batch):
        indices = range(start, min(count, start + batch))
        specs = []
        for i in indices:
            rng = np.random.default_rng([seed, i])
            attributes = random_attributes(rng, kinds, colors)
            obj = WorldObject(1, attributes, (0.0, 0.0), float(rng.uniform(0, 2 * math.pi)))
            lighting = random_lighting(rng)
            grey = float(rng.choice([1.0, 1.0, 0.85, 0.6, 0.3]))
            azimuth, tilt = rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(*elevation))
            specs.append((i, obj, lighting, grey, azimuth, tilt, float(rng.uniform(0.9, 1.15))))
        out: dict[int, LabelledImage] = {}
        for kind in sorted({s[1].attributes.kind for s in specs}):
            group = [s for s in specs if s[1].attributes.kind == kind]
            objects = [s[1] for s in group]
            parts = object_parts(objects)
            eyes, targets = [], []
            for _, obj, _, _, azimuth, tilt, zoom in group:
                top = height(obj.parts) * obj.scale
                distance = zoom * 0.75 * max(top, 0.5 * obj.scale) / math.tan(OBJECT_FOV / 2) + 0.3
                target = torch.tensor([0.0, 0.0, 0.5 * top])
                eyes.append(
                    target
                    + distance
                    * torch.tensor(
                        [math.cos(tilt) * math.cos(azimuth), math.cos(tilt) * math.sin(azimuth), math.sin(tilt)]
                    )
                )
                targets.append(target)
            c2w = look_at(torch.stack(eyes), torch.stack(targets), torch.tensor([0.0, 0.0, 1.0]))
            cameras = pinhole(c2w, resolution, OBJECT_FOV)
            pixels = resolution * resolution
            image_index = torch.arange(len(group)).repeat_interleave(pixels)
            o, d = cameras.pixel_rays(image_index, torch.arange(pixels).repeat(len(group)))
            rendered = render_rays(
                parts,
                o,
                d,
                image_index,
                torch.tensor([s[2].direction for s in group]),
                torch.tensor([s[2].intensity for s in group]),
                torch.tensor([s[2].ambient for s in group]),
                torch.tensor([[s[3]] * 3 for s in group]),
            )
            rgb = rendered["rgb"].reshape(len(group), resolution, resolution, 3)
            for k, s in enumerate(group):
                # the front (-y of the object frame) points at world azimuth yaw - 90 degrees
                relative = (math.degrees(s[4] - s[1].yaw) + 90.0 + 180.0) % 360.0 - 180.0
                out[s[0]] = LabelledImage(s[0], rgb[k], s[1].attributes, view=(relative, math.degrees(s[5])))
        for i in indices:
            yield out[i]


def crop_images(seed: int, count: int, resolution: int = 64, kinds=None, colors=None) -> Iterator[LabelledImage]:
    """``count`` crops of random multi-object scenes around one object, labelled with the dominant object."""
    _check(count, resolution)
    check_names(kinds, colors)
    for i in range(count):
        rng = np.random.default_rng([seed, i, 7])
        scene_seed = int(rng.integers(2**31))
        scene = random_scene(
            scene_seed,
            int(rng.integers(2, 6)),
            kinds=kinds,
            colors=colors,
            background=str(rng.choice(["white", "grey"])),
        )
        render_size = 2 * resolution
        cameras = pinhole(hemisphere_poses(1, CAMERA_RADIUS, rng), render_size)
        view = render_views(scene, cameras)[0]
        ids = view["ids"]
        present = [o for o in scene.objects if int((ids == o.id).sum()) > 0]
        if not present:  # every object hidden behind the table edge: render the next seed instead
            present = scene.objects[:1]
        target = present[int(rng.integers(len(present)))]
        ys, xs = torch.nonzero(ids == target.id, as_tuple=True)
        if len(ys) == 0:
            cy = cx = render_size // 2
            side = render_size // 2
        else:
            cy, cx = int(ys.float().mean()), int(xs.float().mean())
            side = int(max(ys.max() - ys.min(), xs.max() - xs.min()) * 1.4) + 4
        side = max(min(side, render_size), render_size // 4)
        y0 = min(max(cy - side // 2, 0), render_size - side)
        x0 = min(max(cx - side // 2, 0), render_size - side)
        crop_ids = ids[y0 : y0 + side, x0 : x0 + side]
        counts = {o.id: int((crop_ids == o.id).sum()) for o in scene.objects}
        dominant = max(scene.objects, key=lambda o: counts[o.id])
        crop = view["rgb"][y0 : y0 + side, x0 : x0 + side]
        image = Image.fromarray((crop.numpy() * 255 + 0.5).astype(np.uint8)).resize(
            (resolution, resolution), Image.Resampling.BOX
        )
        rgb = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
        yield LabelledImage(i, rgb, dominant.attributes, [o.attributes for o in scene.objects])


def _scene_view(seed: int, i: int, render_size: int, kinds, colors, salt: int):
    rng = np.random.default_rng([seed, i, salt])
    scene = random_scene(
        int(rng.integers(2**31)),
        int(rng.integers(2, 6)),
        kinds=kinds,
        colors=colors,
        background=str(rng.choice(["white", "grey"])),
    )
    cameras = pinhole(hemisphere_poses(1, CAMERA_RADIUS, rng), render_size)
    return rng, scene, render_views(scene, cameras)[0]


def background_crops(
    seed: int, count: int, resolution: int = 64, kinds=None, colors=None, max_object: float = 0.05
) -> Iterator[LabelledImage]:
    """``count`` crops of random scenes in which objects cover at most ``max_object`` of the pixels (the least
    covered of 16 random windows when none qualifies)."""
    _check(count, resolution)
    check_names(kinds, colors)
    render_size = 2 * resolution
    for i in range(count):
        rng, scene, view = _scene_view(seed, i, render_size, kinds, colors, salt=11)
        is_object = ((view["ids"] > 0) & (view["ids"] != TABLE_ID)).float()
        best = None
        for _ in range(16):
            side = int(rng.integers(render_size // 6, render_size // 2 + 1))
            y0, x0 = (int(v) for v in rng.integers(0, render_size - side + 1, size=2))
            covered = float(is_object[y0 : y0 + side, x0 : x0 + side].mean())
            if best is None or covered < best[0]:
                best = (covered, y0, x0, side)
            if covered <= max_object:
                break
        assert best is not None
        _, y0, x0, side = best
        crop = view["rgb"][y0 : y0 + side, x0 : x0 + side]
        image = Image.fromarray((crop.numpy() * 255 + 0.5).astype(np.uint8)).resize(
            (resolution, resolution), Image.Resampling.BOX
        )
        yield LabelledImage(
            i,
            torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0),
            None,
            [o.attributes for o in scene.objects],
        )


def write_images(
    out: Path, seed: int, count: int, resolution: int, kind: str = "object", kinds=None, colors=None, progress=None
) -> Path:
    """Write ``images/NNNNNN.png`` and ``labels.jsonl`` (one JSON object per image) under ``out``."""
    if kind not in ("object", "crop"):
        raise LangfieldError(f"unknown image kind '{kind}' (object or crop)")
    stream = object_images if kind == "object" else crop_images
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "labels.jsonl", "w") as labels:
        for item in stream(seed, count, resolution, kinds, colors):
            name = f"images/{item.index:06d}.png"
            write_image(out / name, Image.fromarray((item.image.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)))
            labels.write(json.dumps(item.label(name)) + "\n")
            if progress:
                progress()
    return out
