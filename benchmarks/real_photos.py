"""Real photographs (scikit-image, scikit-learn) and lego's held-out views, captioned in plain words: top-1 caption
retrieval for each encoder and for the ConSE baseline, and a figure of the photos with their top captions.

    .venv/bin/python benchmarks/real_photos.py                              # mini, vision, ConSE
    .venv/bin/python benchmarks/real_photos.py --encoders OUT/x.safetensors # a re-trained model

Writes OUT/real_photos.json and OUT/real_photos.png (each photo with its caption and the model's top 3; green: right).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def figure(photos, results: dict, path: Path, model: str) -> None:
    from PIL import Image, ImageDraw

    tile, text_h, columns = 160, 64, 7
    rows = (len(photos) + columns - 1) // columns
    canvas = Image.new("RGB", (columns * tile, rows * (tile + text_h)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (photo, row) in enumerate(zip(photos, results[model]["photos"])):
        x, y = (i % columns) * tile, (i // columns) * (tile + text_h)
        image = Image.fromarray((photo.image.clamp(0, 1) * 255).byte().numpy())
        image.thumbnail((tile - 8, tile - 8))
        canvas.paste(image, (x + (tile - image.width) // 2, y + (tile - image.height) // 2))
        draw.text((x + 4, y + tile), f"true: {photo.caption}", fill=(0, 0, 0))
        for k, (caption, _) in enumerate(row["top"]):
            colour = (0, 140, 0) if caption == photo.caption else (200, 0, 0)
            draw.text((x + 4, y + tile + 14 * (k + 1)), f"{k + 1}. {caption}", fill=colour)
    canvas.save(path)


def main() -> None:
    from langfield.apps.real_photos import captions_of, conse_scores, encoder_scores, load_photos, ranking
    from langfield.encoders import load_encoder

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoders", nargs="+", default=["langfield-mini", "langfield-vision"])
    parser.add_argument("--lego", type=Path, default=Path("../shared/data/lego"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/real_photos"))
    parser.add_argument("--figure", default="langfield-vision", help="the model shown in the figure")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    photos = load_photos(args.lego)
    captions = captions_of(photos)
    results = {}
    started = time.perf_counter()
    results["conse-baseline"] = ranking(conse_scores(photos, captions), photos, captions)
    results["conse-baseline"]["seconds"] = round(time.perf_counter() - started, 1)
    for spec in args.encoders:
        started = time.perf_counter()
        encoder = load_encoder(spec)
        with torch.no_grad():
            results[spec] = ranking(encoder_scores(encoder, photos, captions), photos, captions)
        results[spec]["seconds"] = round(time.perf_counter() - started, 1)
    for name, r in results.items():
        wrong = [f"{p['photo']} -> {p['top'][0][0]}" for p in r["photos"] if not p["correct"]]
        print(f"{name}: top-1 {100 * r['top1']:.1f} % ({r['images']} images, {r['captions']} captions); wrong: {wrong}")
    (args.out / "real_photos.json").write_text(json.dumps(results, indent=1))
    if args.figure in results:
        figure(photos, results, args.out / "real_photos.png", args.figure)
        print(f"-> {args.out / 'real_photos.png'}")


if __name__ == "__main__":
    main()
