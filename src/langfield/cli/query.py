"""``langfield query RUN "text" ...``: relevancy heat-maps, raw maps, the best 3D location, a 3D relevancy cloud."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Tuple

import tyro

from langfield.errors import LangfieldError


@dataclass
class QueryArgs:
    """Ask a trained `lerf` run where things are. Writes, per query, a heat-map over the render (PNG), the raw
    relevancy (.npy) and the best 3D location (JSON) into --out."""

    run: tyro.conf.Positional[Path]
    texts: tyro.conf.Positional[Tuple[str, ...]]
    """One or more queries, e.g. "the red mug" "a chair"."""
    out: Path = Path("query")
    view: Optional[int] = None
    """Index of a training camera of the run (default 0); ignored with --path orbit."""
    path: Literal["view", "orbit"] = "view"
    """view: one camera; orbit: --frames cameras around the scene (a heat-map video per query)."""
    frames: int = 24
    export: Optional[Path] = None
    """Also write a 3D relevancy point cloud (PLY: colour = heat-map of the first query, plus one scalar per query)."""
    canonical: Tuple[str, ...] = ()
    """Canonical phrases (default: the run's, "object" "things" "stuff" "texture")."""
    device: str = "auto"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "query"


def overlay(rgb, relevancy):
    """The render with the relevancy heat-map blended where relevancy exceeds 0.5 (LERF's display)."""
    from langfield.export.images import colorize

    strength = ((relevancy - 0.5) * 2).clamp(0, 1)[..., None]
    return rgb * (1 - 0.7 * strength) + colorize(relevancy.clamp(0.5, 1.0), 0.5, 1.0) * 0.7 * strength


def query(argv: list[str]) -> None:
    args = tyro.cli(QueryArgs, args=argv, prog="langfield query")
    if not args.texts or any(not t.strip() for t in args.texts):
        raise LangfieldError("give a non-empty query text, e.g. langfield query RUN \"the red mug\"")
    if args.frames < 1:
        raise LangfieldError(f"--frames must be at least 1, got {args.frames}")
    import numpy as np

    from langfield.export.images import save_png, write_video
    from langfield.methods.lerf.query import LanguageQuery
    from langfield.ui import console, task_bar

    engine = LanguageQuery.open(args.run, args.device)
    if args.canonical:
        engine = LanguageQuery(engine.model, args.canonical)
    texts = [t.strip() for t in args.texts]
    engine.text(texts)  # validates before any rendering
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.path == "orbit":
        from langfield.cameras import orbit_path

        cameras = orbit_path(engine.model.scene.cameras, args.frames)
        frames: list[list[np.ndarray]] = [[] for _ in texts]
        with task_bar("querying an orbit", args.frames) as advance:
            for i in range(args.frames):
                answer = engine.view(texts, i, cameras)
                for q in range(len(texts)):
                    frames[q].append((overlay(answer.rgb, answer.relevancy[q]).clamp(0, 1).numpy() * 255).astype(np.uint8))
                advance()
        for q, text in enumerate(texts):
            write_video(out / f"{slug(text)}_orbit.mp4", frames[q], fps=12)
            console.print(f"{text!r}: {out / (slug(text) + '_orbit.mp4')}")
    else:
        index = 0 if args.view is None else args.view
        answer = engine.view(texts, index)
        for q, text in enumerate(texts):
            name = f"{slug(text)}_view{index}"
            save_png(out / f"{name}.png", overlay(answer.rgb, answer.relevancy[q]))
            np.save(out / f"{name}.npy", answer.relevancy[q].numpy())
            x, y = answer.best_pixel[q].tolist()
            best = {
                "text": text, "view": index, "best_pixel": [x, y], "best_point": [round(v, 5) for v in answer.best_point[q].tolist()],
                "relevancy": round(float(answer.relevancy[q, y, x]), 5), "scale_fraction": round(float(answer.fractions[q]), 4),
                "canonical": list(engine.canonical),
            }
            (out / f"{name}.json").write_text(json.dumps(best, indent=2))
            console.print(f"{text!r}: best pixel ({x}, {y}), 3D {best['best_point']}, relevancy {best['relevancy']:.3f} -> {out / name}.png")
    if args.export:
        from langfield.export.images import colorize
        from langfield.export.ply import write_point_cloud

        positions, _, scores = engine.points(texts)
        colours = (colorize(scores[0].clamp(0.5, 1.0), 0.5, 1.0).numpy() * 255).astype(np.uint8)
        write_point_cloud(args.export, positions.numpy(), colours, {f"relevancy_{slug(t)}": scores[q].numpy() for q, t in enumerate(texts)})
        console.print(f"wrote {args.export} ({len(positions):,} points)")
