"""PSNR over training time and samples per ray over training time of `nerf` runs, as one PNG (no plotting library:
Pillow). The PSNR curve is the trainer's periodic held-out view (`eval_psnr` in train_log.jsonl, every
`--eval-every` steps); a dot at the end is the run's full held-out mean from `langfield eval` (metrics.json).

    .venv/bin/python benchmarks/nerf_curves.py --out docs/images/nerf_psnr_over_time.png \
        "100x100=benchmarks/out/lego180" "400x400=benchmarks/out/lego_ds2"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]
W, H, PAD = 560, 360, 56


def read_run(path: Path) -> dict:
    rows = [json.loads(line) for line in (path / "train_log.jsonl").read_text().splitlines() if line.strip()]
    psnr = [(r["elapsed"], r["eval_psnr"]) for r in rows if "eval_psnr" in r]
    spr = [(r["elapsed"], r["samples_per_ray"]) for r in rows if "samples_per_ray" in r]
    metrics = path / "metrics.json"
    final = json.loads(metrics.read_text()).get("psnr") if metrics.exists() else None
    end = rows[-1]["elapsed"] if rows else 0.0
    return {"psnr": psnr, "spr": spr, "final": None if final is None else (end, final)}


def panel(series: list[tuple[str, list[tuple[float, float]], tuple[float, float] | None]], title: str) -> Image.Image:
    image = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(image)
    points = [p for _, s, end in series for p in s + ([end] if end else [])]
    x1 = max(x for x, _ in points) or 1.0
    y0, y1 = min(y for _, y in points), max(y for _, y in points)
    y0, y1 = y0 - 0.05 * (y1 - y0 + 1e-9), y1 + 0.05 * (y1 - y0 + 1e-9)

    def at(x: float, y: float) -> tuple[float, float]:
        return PAD + x / x1 * (W - 1.5 * PAD), H - PAD - (y - y0) / (y1 - y0) * (H - 1.7 * PAD)

    draw.rectangle([PAD, 0.7 * PAD, W - 0.5 * PAD, H - PAD], outline=(0, 0, 0))
    for k in range(6):
        xv, yv = x1 * k / 5, y0 + (y1 - y0) * k / 5
        px, _ = at(xv, y0)
        _, py = at(0, yv)
        draw.line([px, H - PAD, px, H - PAD + 4], fill=(0, 0, 0))
        draw.text((px - 12, H - PAD + 6), f"{xv:.0f}", fill=(0, 0, 0))
        draw.line([PAD - 4, py, PAD, py], fill=(0, 0, 0))
        draw.text((4, py - 6), f"{yv:.1f}", fill=(0, 0, 0))
    draw.text((W / 2 - 40, H - PAD + 22), "seconds of training", fill=(0, 0, 0))
    draw.text((PAD, 8), title, fill=(0, 0, 0))
    for k, (label, values, end) in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        if len(values) > 1:
            draw.line([at(x, y) for x, y in values], fill=colour, width=2)
        if end is not None:
            ex, ey = at(*end)
            draw.ellipse([ex - 4, ey - 4, ex + 4, ey + 4], fill=colour)
        draw.text((W - 2.6 * PAD - 60, 0.7 * PAD + 8 + 14 * k), label, fill=colour)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="LABEL=RUN_FOLDER")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    runs = []
    for item in args.runs:
        label, _, folder = item.partition("=")
        runs.append((label, read_run(Path(folder))))
    psnr = panel(
        [(label, r["psnr"], r["final"]) for label, r in runs],
        "held-out PSNR (dB): line = view 0 during training, dot = all held-out views at the end",
    )
    spr = panel([(label, r["spr"], None) for label, r in runs], "field samples per ray")
    figure = Image.new("RGB", (2 * W, H), "white")
    figure.paste(psnr, (0, 0))
    figure.paste(spr, (W, 0))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
