"""Regenerate the pictures of the README and BENCHMARKS.md (procedural world, embedded encoder).

.venv/bin/python docs/make_images.py
.venv/bin/python docs/make_images.py lerf RUN...     # heat-maps of trained lerf runs on procedural scenes
.venv/bin/python docs/make_images.py lerf RUN... --name lerf_fresh_heatmaps.png   # the same, another file
.venv/bin/python docs/make_images.py photo-query     # `langfield query` on real photographs (langfield-vision)
"""

from __future__ import annotations

import json
import sys
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


def encoder_examples() -> None:
    """Held-out objects and scene crops with langfield-mini's zero-shot top-1 among all colour x kind captions
    (objects) or among the scene's objects (crops); green when right, red when wrong."""
    from PIL import Image, ImageDraw

    from langfield.apps.zeroshot import CLASSES, EVAL_CROP_SEED, EVAL_OBJECT_SEED, class_embeddings
    from langfield.encoders import load_encoder
    from langfield.world.images import crop_images

    encoder = load_encoder("langfield-mini")
    tiles = []
    with torch.no_grad():
        for item in object_images(EVAL_OBJECT_SEED + 7, 8, 96):
            scores = encoder.encode_image(item.image) @ class_embeddings(encoder, CLASSES, "train").T
            tiles.append((item.image, CLASSES[int(scores.argmax())], (item.attributes.color, item.attributes.kind)))
        for item in crop_images(EVAL_CROP_SEED + 7, 4, 96):
            classes = list(dict.fromkeys((a.color, a.kind) for a in item.scene_objects))
            scores = encoder.encode_image(item.image) @ class_embeddings(encoder, classes, "train").T
            tiles.append((item.image, classes[int(scores.argmax())], (item.attributes.color, item.attributes.kind)))
    size, label = 96, 16
    canvas = Image.new("RGB", (6 * size, 2 * (size + label)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (image, guess, truth) in enumerate(tiles):
        x, y = (i % 6) * size, (i // 6) * (size + label)
        canvas.paste(Image.fromarray((image.numpy() * 255 + 0.5).astype(np.uint8)), (x, y))
        draw.text((x + 3, y + size + 2), " ".join(guess), fill=(0, 130, 0) if guess == truth else (200, 0, 0))
    canvas.save(OUT / "encoder_examples.png")


def save_rows(rows: list[np.ndarray], name: str) -> None:
    """Labelled rows (uint8 images of any width) one under the other on white, as ``docs/images/<name>``."""
    from PIL import Image

    canvas = Image.new("RGB", (max(r.shape[1] for r in rows), sum(r.shape[0] for r in rows)), "white")
    y = 0
    for r in rows:
        canvas.paste(Image.fromarray(r), (0, y))
        y += r.shape[0]
    OUT.mkdir(parents=True, exist_ok=True)
    canvas.save(OUT / name)


def lerf_heatmaps(runs: list[str], queries_per_run: int = 4, name: str = "lerf_heatmaps.png") -> None:
    """One row per lerf run: a held-out ground-truth view, then heat-maps of the first objects' captions (a training
    wording, and an evaluation-only wording for the last one), best pixel circled."""

    from langfield.apps.query import open_query
    from langfield.data import load_dataset
    from langfield.methods.lerf.config import LerfModelConfig
    from langfield.methods.lerf.heatmaps import grid
    from langfield.run import read_run_config

    rows = []
    for run in runs:
        _, config = read_run_config(Path(run))
        dataset = load_dataset(config.data)
        objects = json.loads((Path(dataset.source) / "objects.json").read_text())["objects"]
        texts = [o["captions"]["train"][0] for o in objects[: queries_per_run - 1]] + [
            objects[queries_per_run - 1]["captions"]["eval"][0]
        ]
        index = dataset.test_indices[1]
        # today's query defaults, whatever the run was trained with
        engine = open_query(
            Path(run), fractions=LerfModelConfig.query_fractions, smoothing=LerfModelConfig.query_smoothing
        )
        answer = engine.view(texts, index, cameras=dataset.cameras)
        rows.append(grid(answer, scale=2, truth=dataset.rgb(index)))
    save_rows(rows, name)


PHOTO_QUERIES = (
    (("chelsea", "coffee"), ("a cat", "a cup of coffee", "a flower")),
    (("astronaut",), ("a rocket", "an astronaut", "a cup of coffee")),
)


def photo_queries() -> None:
    """`langfield query` on real photographs (scikit-image's, never used in training): one row per photo (two photos
    side by side in the first), its heat-maps with langfield-vision, best pixel circled."""
    from torch.nn import functional as F

    from langfield.apps.photo_query import query_photo
    from langfield.apps.real_photos import load_photos
    from langfield.encoders import load_encoder
    from langfield.methods.lerf.heatmaps import grid

    photos = {p.name: p.image for p in load_photos()}
    encoder = load_encoder("langfield-vision")
    rows = []
    for names, texts in PHOTO_QUERIES:
        parts = []
        for name in names:
            image = photos[name].permute(2, 0, 1)[None]
            size = (192, round(image.shape[-1] * 192 / image.shape[-2]))
            parts.append(F.interpolate(image, size=size, mode="bilinear", antialias=True)[0])
        answer = query_photo(torch.cat(parts, dim=2).permute(1, 2, 0), texts, encoder, progress=False)
        rows.append(grid(answer, scale=1, first="photo"))
    save_rows(rows, "photo_query.png")


def main() -> None:
    if sys.argv[1:2] == ["lerf"]:
        runs = sys.argv[2:]
        if "--name" in runs:
            at = runs.index("--name")
            lerf_heatmaps(runs[:at] + runs[at + 2 :], name=runs[at + 1])
        else:
            lerf_heatmaps(runs)
        return
    if sys.argv[1:2] == ["photo-query"]:
        photo_queries()
        return
    encoder_examples()
    rows = []
    for r, seed in enumerate((11, 12)):
        items = [next(iter(object_images(seed * 100 + i, 1, 96, kinds=[kind]))) for i, kind in enumerate(KINDS)]
        rows.append(torch.cat([item.image for item in items], dim=1))
    save_png(OUT / "world_objects.png", torch.cat(rows, dim=0))

    scene = random_scene(0, 6)
    cameras = pinhole(hemisphere_poses(4, 3.6, np.random.default_rng(3)), 2 * 160)
    views = supersampled(render_views(scene, cameras), 2)
    save_png(
        OUT / "world_scene.png",
        torch.cat([v["rgb"] * v["alpha"][..., None] + (1 - v["alpha"][..., None]) for v in views], dim=1),
    )
    ids = torch.cat([v["ids"].float() for v in views], dim=1)
    palette = torch.rand(256, 3, generator=torch.Generator().manual_seed(0))
    palette[0] = 1.0
    save_png(OUT / "world_scene_masks.png", palette[ids.long()])


if __name__ == "__main__":
    main()
