"""Pictures of query answers: relevancy heat-maps over renders (LERF's display), their files, and labelled grids."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

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


class Answer(Protocol):
    """What a picture of a query answer needs: per query, its relevancy map over the image, best pixel and scale."""

    texts: list[str]
    relevancy: torch.Tensor  # (Q, H, W)
    fractions: torch.Tensor  # (Q,) chosen crop fraction
    best_pixel: torch.Tensor  # (Q, 2) (x, y)
    rgb: torch.Tensor  # (H, W, 3)


def write_maps(answer: Answer, out: Path, suffix: str, extra: list[dict]) -> list[dict]:
    """Per query: ``<slug><suffix>.png`` (heat-map over the image), ``.npy`` (raw relevancy), ``.json`` (best pixel,
    its relevancy, the chosen scale, and that query's ``extra`` entries). Returns the JSON records."""
    from langfield.atomic import write_json
    from langfield.export.images import save_npy, save_png

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for q, text in enumerate(answer.texts):
        name = f"{slug(text)}{suffix}"
        save_png(out / f"{name}.png", overlay(answer.rgb, answer.relevancy[q]))
        save_npy(out / f"{name}.npy", answer.relevancy[q].numpy())
        x, y = answer.best_pixel[q].tolist()
        record = {
            "text": text,
            "best_pixel": [x, y],
            "relevancy": round(float(answer.relevancy[q, y, x]), 5),
            "scale_fraction": round(float(answer.fractions[q]), 4),
            **extra[q],
            "image": str(out / f"{name}.png"),
        }
        write_json(out / f"{name}.json", record)
        records.append(record)
    return records


def write_answer(answer: ViewAnswer, out: Path, view: int, canonical: tuple[str, ...]) -> list[dict]:
    """A view's answer (:func:`write_maps`, files ``<slug>_view<I>.*``); the JSON adds the view, the best pixel's 3D
    point and the canonical phrases."""
    extra = [
        {"view": view, "best_point": [round(v, 5) for v in point.tolist()], "canonical": list(canonical)}
        for point in answer.best_point
    ]
    return write_maps(answer, out, f"_view{view}", extra)


def grid(answer: Answer, scale: int = 2, truth: torch.Tensor | None = None, first: str = "render") -> np.ndarray:
    """One labelled row: the image (labelled ``first``; or ``truth``), then each query's heat-map with its best pixel
    marked."""
    from PIL import Image, ImageDraw

    from langfield.export.images import to_uint8

    h, w = answer.rgb.shape[:2]
    tiles = [(first if truth is None else "ground truth", answer.rgb if truth is None else truth, None)]
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
