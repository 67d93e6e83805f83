"""Seconds to render held-out views of a trained run at another resolution than it was trained at (the issue-25
figure: one 800×800 lego view), with their PSNR; writes each render beside its ground truth as a PNG.

    .venv/bin/python benchmarks/nerf_render.py benchmarks/out/lego180 --downscale 1 --views 2 \
        --out benchmarks/out/render800
    # the render variants of a nerf run side by side, in rounds in one process (the machine's speed drifts):
    # no block skipping in float32 (the code before), block skipping in float32, block skipping + bfloat16 colour
    .venv/bin/python benchmarks/nerf_render.py RUN --downscale 1 --views 2 --out OUT --compare --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from langfield.data import load_dataset
from langfield.export.images import save_png
from langfield.run import load_run
from langfield.train.metrics import psnr

#: name -> (nerf's skip_block, render_bfloat16)
VARIANTS = {
    "every step tested, float32": (0, False),
    "block skipping, float32": (4, False),
    "block skipping, bfloat16 colour": (4, True),
}


def render(model, dataset, index: int) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    out = model.render_camera(dataset.cameras, index)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out["rgb"].cpu(), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--downscale", type=int, default=1)
    parser.add_argument("--views", type=int, default=2, help="the first N held-out views")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--float32", action="store_true", help="the colour MLP in float32 (no bfloat16 renders)")
    parser.add_argument("--compare", action="store_true", help="time the render variants of a nerf run in rounds")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    run = load_run(args.run)
    model = run.model
    if args.float32 and hasattr(model, "field"):
        model.field.render_bfloat16 = False
    config = run.config.data
    config.downscale = args.downscale
    dataset = load_dataset(config)
    views = dataset.test_indices[: args.views]
    args.out.mkdir(parents=True, exist_ok=True)
    resolution = [dataset.width, dataset.height]
    if args.compare:
        render(model, dataset, views[0])  # warm-up
        seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
        quality: dict[str, float] = {}
        for _ in range(args.rounds):
            for name, (block, bfloat16) in VARIANTS.items():
                model.config.skip_block, model.field.render_bfloat16 = block, bfloat16
                for index in views:
                    prediction, took = render(model, dataset, index)
                    seconds[name].append(took)
                    quality[f"{name}, view {index}"] = round(psnr(prediction, dataset.rgb(index)), 3)
        rows = {
            name: {"median_s": round(statistics.median(s), 2), "seconds": [round(x, 2) for x in s]}
            for name, s in seconds.items()
        }
        for name, row in rows.items():
            print(f"{name}: median {row['median_s']:.2f} s per {resolution[0]}x{resolution[1]} view ({row['seconds']})")
        summary = {"run": str(args.run), "resolution": resolution, "views": views, "variants": rows, "psnr": quality}
        (args.out / "render_compare.json").write_text(json.dumps(summary, indent=2) + "\n")
        return
    rows = []
    for index in views:
        prediction, took = render(model, dataset, index)
        target = dataset.rgb(index)
        rows.append({"index": index, "seconds": round(took, 3), "psnr": round(psnr(prediction, target), 3)})
        save_png(args.out / f"view{index}_render_gt.png", torch.cat([prediction, target], dim=1))
        print(f"view {index}: {dataset.width}x{dataset.height} in {took:.2f} s, PSNR {rows[-1]['psnr']:.2f} dB")
    summary = {"run": str(args.run), "resolution": resolution, "float32": args.float32, "views": rows}
    (args.out / "render.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
