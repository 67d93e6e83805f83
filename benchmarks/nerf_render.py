"""Seconds to render held-out views of a trained run at another resolution than it was trained at (the issue-25
figure: one 800×800 lego view), with their PSNR; writes each render beside its ground truth as a PNG.

    .venv/bin/python benchmarks/nerf_render.py benchmarks/out/lego180 --downscale 1 --views 2 \
        --out benchmarks/out/render800
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from langfield.data import load_dataset
from langfield.export.images import save_png
from langfield.run import load_run
from langfield.train.metrics import psnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--downscale", type=int, default=1)
    parser.add_argument("--views", type=int, default=2, help="the first N held-out views")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--float32", action="store_true", help="the colour MLP in float32 (no bfloat16 renders)")
    args = parser.parse_args()

    run = load_run(args.run)
    if args.float32 and hasattr(run.model, "field"):
        run.model.field.render_bfloat16 = False
    config = run.config.data
    config.downscale = args.downscale
    dataset = load_dataset(config)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in dataset.test_indices[: args.views]:
        start = time.perf_counter()
        out = run.model.render_camera(dataset.cameras, index)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        prediction, target = out["rgb"].cpu(), dataset.rgb(index)
        rows.append({"index": index, "seconds": round(seconds, 3), "psnr": round(psnr(prediction, target), 3)})
        save_png(args.out / f"view{index}_render_gt.png", torch.cat([prediction, target], dim=1))
        print(f"view {index}: {dataset.width}x{dataset.height} in {seconds:.2f} s, PSNR {rows[-1]['psnr']:.2f} dB")
    resolution = [dataset.width, dataset.height]
    summary = {"run": str(args.run), "resolution": resolution, "float32": args.float32, "views": rows}
    (args.out / "render.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
