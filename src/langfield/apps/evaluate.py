"""Evaluation of a run on its held-out views: PSNR, SSIM and render time, written to ``RUN/metrics.json``."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from langfield.atomic import update_json
from langfield.data import load_dataset
from langfield.errors import LangfieldError
from langfield.export.images import save_png
from langfield.run import load_run
from langfield.train.metrics import psnr, ssim
from langfield.ui import task_bar


def evaluate_run(
    run_path: Path, data: Path | None = None, save_images: bool = False, device: str = "auto", progress: bool = True
) -> dict:
    run = load_run(run_path, device)
    if not hasattr(run.config, "data"):
        raise LangfieldError(f"{run_path}: a {run.method.name} run has no dataset, so no held-out views to score")
    data_config = run.config.data
    if data is not None:
        data_config.data = Path(data)
    dataset = load_dataset(data_config)
    views = dataset.test_indices
    if not views:
        raise LangfieldError(f"{dataset.source}: no held-out views to evaluate (check --holdout-every / split files)")
    psnrs, ssims, seconds = [], [], []
    per_view = []
    with task_bar("evaluating", len(views), enabled=progress) as advance:
        for index in views:
            start = time.perf_counter()
            run.model.select_view(dataset, index)
            out = run.model.render_camera(dataset.cameras, index)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - start)
            prediction, target = out["rgb"].cpu(), dataset.rgb(index)
            psnrs.append(psnr(prediction, target))
            ssims.append(ssim(prediction, target))
            per_view.append(
                {
                    "index": index,
                    "file": dataset.filenames[index] if dataset.filenames else str(index),
                    "psnr": psnrs[-1],
                    "ssim": ssims[-1],
                }
            )
            if save_images:
                stem = Path(per_view[-1]["file"]).stem
                save_png(Path(run_path) / "eval" / f"{stem}_render.png", prediction)
                save_png(Path(run_path) / "eval" / f"{stem}_gt.png", target)
                save_png(Path(run_path) / "eval" / f"{stem}_pair.png", torch.cat([prediction, target], dim=1))
            advance()
    metrics = {
        "psnr": sum(psnrs) / len(psnrs),
        "ssim": sum(ssims) / len(ssims),
        "num_views": len(views),
        "seconds_per_view": sum(seconds) / len(seconds),
        "method": run.method.name,
        "step": run.step,
        "resolution": [dataset.width, dataset.height],
        "views": per_view,
    }
    update_json(Path(run_path) / "metrics.json", metrics)  # keeps other tasks' figures (localization)
    return metrics
