"""LERF's localisation protocol on procedural-world scenes, with exact masks instead of hand-drawn boxes.

For every held-out view, every object covering at least ``min_area`` of it, and every one of that object's
captions (training-style and evaluation-only wordings, from ``objects.json``): success when the highest-relevancy
pixel of the view lies inside the object's mask.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from langfield.errors import LangfieldError


def mask_path(source: Path, filename: str) -> Path:
    """``masks/<split>/<name>.png`` beside a Blender-format procedural scene."""
    return Path(source) / "masks" / Path(filename).with_suffix(".png")


def evaluate_localization(
    run_path: Path,
    data: Path | None = None,
    device: str = "auto",
    progress: bool = True,
    min_area: float = 0.005,
    fractions: tuple[float, ...] | None = None,
    smoothing: float | None = None,
) -> dict:
    """Localisation accuracy of a lerf run; ``fractions`` / ``smoothing`` override the run's query settings."""
    from langfield.apps.query import open_query
    from langfield.data import load_dataset
    from langfield.ui import task_bar

    query = open_query(run_path, device, fractions=fractions, smoothing=smoothing)
    from langfield.run import read_run_config

    _, config = read_run_config(Path(run_path))
    if data is not None:
        config.data.data = Path(data)
    dataset = load_dataset(config.data)
    objects_file = Path(dataset.source) / "objects.json"
    if not objects_file.is_file():
        raise LangfieldError(
            f"{dataset.source}: --task localization needs a procedural-world scene (objects.json and masks/)"
        )
    from langfield.data.jsonio import read_json, require

    objects = require(read_json(objects_file), "objects", str(objects_file), list)
    if not dataset.test_indices:
        raise LangfieldError(f"{dataset.source}: no held-out views")
    results = []
    seconds = []
    with task_bar("localisation", len(dataset.test_indices), progress) as advance:
        for index in dataset.test_indices:
            file = mask_path(dataset.source, dataset.filenames[index])
            if not file.is_file():
                raise LangfieldError(f"missing mask {file}")
            ids = torch.from_numpy(np.asarray(Image.open(file), dtype=np.int64))
            if ids.shape != (dataset.height, dataset.width):
                ids = torch.from_numpy(
                    np.asarray(
                        Image.open(file).resize((dataset.width, dataset.height), Image.Resampling.NEAREST),
                        dtype=np.int64,
                    )
                )
            jobs = []
            for obj in objects:
                if float((ids == obj["id"]).float().mean()) < min_area:
                    continue
                for wording in ("train", "eval"):
                    jobs += [(obj, wording, text) for text in obj["captions"][wording]]
            if not jobs:
                advance()
                continue
            start = time.perf_counter()
            answer = query.view([text for _, _, text in jobs], index, cameras=dataset.cameras)
            seconds.append(time.perf_counter() - start)
            for (obj, wording, text), (x, y) in zip(jobs, answer.best_pixel.tolist()):
                hit = int(ids[y, x]) == obj["id"]
                results.append(
                    {
                        "view": index,
                        "object": obj["id"],
                        "name": f"{obj['attributes']['color']} {obj['attributes']['kind']}",
                        "wording": wording,
                        "text": text,
                        "success": hit,
                    }
                )
            advance()
    if not results:
        raise LangfieldError(f"{dataset.source}: no object is visible in the held-out views")

    def accuracy(rows: list[dict]) -> float:
        return sum(r["success"] for r in rows) / max(len(rows), 1)

    names = sorted({r["name"] for r in results})
    return {
        "localization": accuracy(results),
        "localization_train_wording": accuracy([r for r in results if r["wording"] == "train"]),
        "localization_eval_wording": accuracy([r for r in results if r["wording"] == "eval"]),
        "per_object": {n: accuracy([r for r in results if r["name"] == n]) for n in names},
        "queries": len(results),
        "views": len(dataset.test_indices),
        "localization_seconds_per_view": sum(seconds) / max(len(seconds), 1),
        "details": results,
    }


SUMMARY_KEYS = (
    "localization",
    "localization_train_wording",
    "localization_eval_wording",
    "queries",
    "localization_seconds_per_view",
)


def write_localization(run_path: Path, result: dict) -> None:
    """``RUN/localization.json`` (every query's outcome) and the summary merged into ``RUN/metrics.json``."""
    run_path = Path(run_path)
    from langfield.atomic import update_json, write_json

    write_json(run_path / "localization.json", result)
    update_json(run_path / "metrics.json", {k: v for k, v in result.items() if k not in ("details", "views")})
