"""``langfield train clipnerf --category NAME``: the procedural category's dataset, rendered into the run's folder
once (reused on --resume or when it is already there with the same options)."""

from __future__ import annotations

import json

from langfield.world.category import write_category_dataset

FOLDER = "category-data"


def prepare_category(config) -> None:
    if config.category is None:
        return
    folder = config.output / FOLDER
    wanted = {
        "category": config.category,
        "object_count": config.objects,
        "views": config.views,
        "resolution": config.resolution,
    }
    try:
        existing = json.loads((folder / "objects.json").read_text())
        same = all(existing.get(k) == v for k, v in wanted.items())
    except (OSError, ValueError):
        same = False
    if not same:
        write_category_dataset(
            folder, config.category, config.objects, config.views, config.resolution, progress=config.trainer.progress
        )
    config.data.data = folder
