"""Regenerate the procedural-world pictures of the README.

    .venv/bin/python docs/make_images.py
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from langfield.export.images import save_png
from langfield.world.cameras import hemisphere_poses, pinhole
from langfield.world.dataset import render_views, supersampled
from langfield.world.images import object_images
from langfield.world.scene import random_scene
from langfield.world.vocabulary import KINDS

OUT = Path(__file__).parent / "images"


def main() -> None:
    rows = []
    for r, seed in enumerate((11, 12)):
        items = [next(iter(object_images(seed * 100 + i, 1, 96, kinds=[kind]))) for i, kind in enumerate(KINDS)]
        rows.append(torch.cat([item.image for item in items], dim=1))
    save_png(OUT / "world_objects.png", torch.cat(rows, dim=0))

    scene = random_scene(0, 6)
    cameras = pinhole(hemisphere_poses(4, 3.6, np.random.default_rng(3)), 2 * 160)
    views = supersampled(render_views(scene, cameras), 2)
    save_png(OUT / "world_scene.png", torch.cat([v["rgb"] * v["alpha"][..., None] + (1 - v["alpha"][..., None]) for v in views], dim=1))
    ids = torch.cat([v["ids"].float() for v in views], dim=1)
    palette = torch.rand(256, 3, generator=torch.Generator().manual_seed(0))
    palette[0] = 1.0
    save_png(OUT / "world_scene_masks.png", palette[ids.long()])


if __name__ == "__main__":
    main()
