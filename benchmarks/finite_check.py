"""What the trainer's finite checks cost: the same `nerf` run on lego (100x100) with the per-step gradient check and
the pre-save parameter check, and with both switched off, side by side in one process; plus the check alone on
the gradients of the full 160^3 grids.

    .venv/bin/python benchmarks/finite_check.py --seconds 60 --out benchmarks/out/finite_check
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from langfield.cli.parsing import parse
from langfield.core import SceneInfo
from langfield.methods.nerf.config import NerfConfig
from langfield.methods.nerf.model import MAX_AUTO_RESOLUTION, NerfModel
from langfield.methods.registry import get_method
from langfield.train import loop as trainer_module
from langfield.train.loop import all_finite
from langfield.train.trainer import Trainer


def run(data: Path, out: Path, seconds: float, checked: bool) -> dict:
    config = parse(
        NerfConfig,
        [
            "--data",
            str(data),
            "--downscale",
            "8",
            "--output",
            str(out),
            "--max-seconds",
            str(seconds),
            "--seed",
            "0",
            "--no-progress",
            "--eval-every",
            "0",
            "--overwrite",
        ],
    )
    original = trainer_module.all_finite
    if not checked:
        trainer_module.all_finite = lambda tensors: True
    try:
        Trainer(get_method("nerf"), config).train()
    finally:
        trainer_module.all_finite = original
    return json.loads((out / "train_summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("../shared/data/lego"))
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/finite_check"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    results = {}
    for name, checked in (("checked", True), ("unchecked", False), ("checked again", True)):
        summary = run(args.data, args.out / name.replace(" ", "_"), args.seconds, checked)
        results[name] = {k: summary[k] for k in ("steps", "seconds", "samples_per_second", "train_psnr")}
        print(name, results[name], flush=True)
    # the check alone on gradients of the final-resolution grids
    scene = SceneInfo.from_state(torch.load(args.out / "checked" / "checkpoint.pt", weights_only=True)["scene"])
    model_config = NerfConfig().model
    model_config.resolution = MAX_AUTO_RESOLUTION  # 160^3: the largest the automatic lattice picks
    model_config.initial_resolution = model_config.resolution  # the grids at their final size
    model = NerfModel(model_config, scene)
    grads = [torch.randn_like(p) for p in model.parameters()]
    all_finite(grads)
    started = time.perf_counter()
    for _ in range(20):
        all_finite(grads)
    results["check_ms_full_grids"] = round((time.perf_counter() - started) / 20 * 1000, 2)
    results["parameters"] = sum(p.numel() for p in model.parameters())
    print(json.dumps(results, indent=2))
    (args.out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
