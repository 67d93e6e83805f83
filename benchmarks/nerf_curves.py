"""PSNR over training time and samples per ray over training time of `nerf` runs, as one PNG (no plotting library:
Pillow). The PSNR curve is the trainer's periodic held-out view (`eval_psnr` in train_log.jsonl, every
`--eval-every` steps, at most `--eval-pixels` of its pixels); a dot at the end is the run's full held-out mean from
`langfield eval` (metrics.json). `--log-time` for runs of very different length.

    .venv/bin/python benchmarks/nerf_curves.py --out docs/images/nerf_psnr_over_time.png \
        "100x100=benchmarks/out/lego180" "400x400=benchmarks/out/lego_ds2"
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]
W, H, PAD = 560, 360, 56
LOG_TICKS = (1, 3, 10, 30, 100, 300, 1000, 3000, 10000)


def read_run(path: Path) -> dict:
    rows = [json.loads(line) for line in (path / "train_log.jsonl").read_text().splitlines() if line.strip()]
    psnr = [(r["elapsed"], r["eval_psnr"]) for r in rows if "eval_psnr" in r]
    spr = [(r["elapsed"], r["samples_per_ray"]) for r in rows if "samples_per_ray" in r]
    metrics = path / "metrics.json"
    final = json.loads(metrics.read_text()).get("psnr") if metrics.exists() else None
    end = rows[-1]["elapsed"] if rows else 0.0
    return {"psnr": psnr, "spr": spr, "final": None if final is None else (end, final)}


def panel(
    series: list[tuple[str, list[tuple[float, float]], tuple[float, float] | None]],
    title: str,
    log_time: bool,
    legend_low: bool,
) -> Image.Image:
    image = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(image)
    points = [p for _, s, end in series for p in s + ([end] if end else [])]
    x1 = max(x for x, _ in points) or 1.0
    x0 = min(x for x, _ in points if x > 0) if log_time else 0.0
    y0, y1 = min(y for _, y in points), max(y for _, y in points)
    y0, y1 = y0 - 0.05 * (y1 - y0 + 1e-9), y1 + 0.05 * (y1 - y0 + 1e-9)

    def fraction(x: float) -> float:
        if log_time:
            return math.log(max(x, x0) / x0) / max(math.log(x1 / x0), 1e-9)
        return x / x1

    def at(x: float, y: float) -> tuple[float, float]:
        return PAD + fraction(x) * (W - 1.5 * PAD), H - PAD - (y - y0) / (y1 - y0) * (H - 1.7 * PAD)

    draw.rectangle([PAD, 0.7 * PAD, W - 0.5 * PAD, H - PAD], outline=(0, 0, 0))
    ticks = [x for x in LOG_TICKS if x0 <= x <= x1] if log_time else [x1 * k / 5 for k in range(6)]
    for xv in ticks:
        px, _ = at(xv, y0)
        draw.line([px, H - PAD, px, H - PAD + 4], fill=(0, 0, 0))
        draw.text((px - 12, H - PAD + 6), f"{xv:.0f}", fill=(0, 0, 0))
    for k in range(6):
        yv = y0 + (y1 - y0) * k / 5
        _, py = at(x0, yv)
        draw.line([PAD - 4, py, PAD, py], fill=(0, 0, 0))
        draw.text((4, py - 6), f"{yv:.1f}", fill=(0, 0, 0))
    axis = "seconds of training" + (" (log scale)" if log_time else "")
    draw.text((W / 2 - 60, H - PAD + 22), axis, fill=(0, 0, 0))
    draw.text((PAD, 8), title, fill=(0, 0, 0))
    for k, (label, values, end) in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        if len(values) > 1:
            draw.line([at(x, y) for x, y in values], fill=colour, width=2)
        if end is not None:
            ex, ey = at(*end)
            draw.ellipse([ex - 4, ey - 4, ex + 4, ey + 4], fill=colour)
        # the legend sits on the right, below rising curves or above falling ones
        legend_y = H - PAD - 14 * (len(series) - k) - 6 if legend_low else 0.7 * PAD + 8 + 14 * k
        draw.text((W - 3.6 * PAD - 60, legend_y), label, fill=colour)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="LABEL=RUN_FOLDER")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--log-time", action="store_true", help="logarithmic time (runs of different length)")
    args = parser.parse_args()
    runs = []
    for item in args.runs:
        label, _, folder = item.partition("=")
        runs.append((label, read_run(Path(folder))))
    psnr = panel(
        [(label, r["psnr"], r["final"]) for label, r in runs],
        "held-out PSNR (dB): line = view 0 during training, dot = all held-out views at the end",
        args.log_time,
        legend_low=True,
    )
    spr = panel([(label, r["spr"], None) for label, r in runs], "field samples per ray", args.log_time, False)
    figure = Image.new("RGB", (2 * W, H), "white")
    figure.paste(psnr, (0, 0))
    figure.paste(spr, (W, 0))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
