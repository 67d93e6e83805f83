"""Pictures of query answers: relevancy heat-maps over renders (LERF's display), their files, and labelled grids."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from langfield.methods.lerf.query import ViewAnswer


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "query"


def overlay(rgb: torch.Tensor, relevancy: torch.Tensor) -> torch.Tensor:
    """The render with the relevancy heat-map blended where relevancy exceeds 0.5 (LERF's display)."""
    from langfield.export.images import colorize

    strength = ((relevancy - 0.5) * 2).clamp(0, 1)[..., None]
    return (rgb * (1 - 0.7 * strength) + colorize(relevancy.clamp(0.5, 1.0), 0.5, 1.0) * 0.7 * strength).clamp(0, 1)


def write_answer(answer: ViewAnswer, out: Path, view: int, canonical: tuple[str, ...]) -> list[dict]:
    """Per query: ``<slug>_view<I>.png`` (heat-map over the render), ``.npy`` (raw relevancy), ``.json`` (best
    pixel, best 3D point, its relevancy and the chosen scale). Returns the JSON records."""
    from langfield.atomic import write_json
    from langfield.export.images import save_npy, save_png

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for q, text in enumerate(answer.texts):
        name = f"{slug(text)}_view{view}"
        save_png(out / f"{name}.png", overlay(answer.rgb, answer.relevancy[q]))
        save_npy(out / f"{name}.npy", answer.relevancy[q].numpy())
        x, y = answer.best_pixel[q].tolist()
        record = {
            "text": text,
            "view": view,
            "best_pixel": [x, y],
            "best_point": [round(v, 5) for v in answer.best_point[q].tolist()],
            "relevancy": round(float(answer.relevancy[q, y, x]), 5),
            "scale_fraction": round(float(answer.fractions[q]), 4),
            "canonical": list(canonical),
            "image": str(out / f"{name}.png"),
        }
        write_json(out / f"{name}.json", record)
        records.append(record)
    return records


def grid(answer: ViewAnswer, scale: int = 2, truth: torch.Tensor | None = None) -> np.ndarray:
    """One labelled row: the render (or ``truth``), then each query's heat-map with its best pixel marked."""
    from PIL import Image, ImageDraw

    from langfield.export.images import to_uint8

    h, w = answer.rgb.shape[:2]
    tiles = [("render" if truth is None else "ground truth", answer.rgb if truth is None else truth, None)]
    tiles += [
        (text, overlay(answer.rgb, answer.relevancy[q]), answer.best_pixel[q].tolist())
        for q, text in enumerate(answer.texts)
    ]
    label = 14
    tile_w, tile_h = w * scale, h * scale
    canvas = Image.new("RGB", (tile_w * len(tiles), tile_h + label), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (text, image, best) in enumerate(tiles):
        tile = Image.fromarray(to_uint8(image)).resize((tile_w, tile_h), Image.Resampling.NEAREST)
        canvas.paste(tile, (i * tile_w, label))
        caption = text if len(text) <= tile_w // 6 else text[: tile_w // 6 - 1] + "…"
        draw.text((i * tile_w + 2, 1), caption, fill="black")
        if best is not None:
            x, y = (best[0] + 0.5) * scale + i * tile_w, (best[1] + 0.5) * scale + label
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), outline="white", width=2)
    return np.asarray(canvas)
