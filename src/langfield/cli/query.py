"""``langfield query RUN "text" ...``: relevancy heat-maps, raw maps, the best 3D location, a 3D relevancy cloud;
``langfield query PHOTO "text" ...``: heat-maps over one photograph, with no 3D field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Optional, Tuple

import tyro

from langfield.checks import NON_NEGATIVE, at_least, between
from langfield.cli.parsing import parse
from langfield.errors import LangfieldError


@dataclass
class QueryArgs:
    """Ask a trained `lerf` run where things are. Writes, per query, a heat-map over the render (PNG), the raw
    relevancy (.npy) and the best 3D location (JSON) into --out. Given a photograph (PNG, JPEG, ...; any size)
    instead of a run, answers on the photo itself: heat-maps, raw relevancy, the best pixel, and queries.png with
    all of them."""

    run: tyro.conf.Positional[Path]
    """A `lerf` run folder, or a photograph."""
    texts: tyro.conf.Positional[Tuple[str, ...]]
    """One or more queries, e.g. "the red mug" "a chair"."""
    out: Path = Path("query")
    view: Annotated[Optional[int], NON_NEGATIVE] = None
    """Index of a training camera of the run (default 0); ignored with --path orbit."""
    path: Literal["view", "orbit"] = "view"
    """view: one camera; orbit: --frames cameras around the scene (a heat-map video per query)."""
    frames: Annotated[int, at_least(1)] = 24
    export: Optional[Path] = None
    """Also write a 3D relevancy point cloud (PLY: colour = heat-map of the first query, plus one scalar per query)."""
    canonical: Tuple[str, ...] = ()
    """Canonical phrases (default: the run's, "object" "things" "stuff" "texture")."""
    scales: Annotated[Tuple[float, ...], between(0, 1, lo_open=True)] = ()
    """Crop scales tried per query, as fractions of the image height (default: the run's, 0.1 ... 0.3; for a photo
    0.2 ... 0.65)."""
    smoothing: Annotated[Optional[float], NON_NEGATIVE] = None
    """Gaussian blur of the maps, as a fraction of the image height (default: the run's, 0.02; for a photo 0.02;
    0: none)."""
    encoder: Optional[str] = None
    """Photos only: the vision-language encoder that reads the photo's crops (default: langfield-vision, the one on
    a real ImageNet backbone); a run queries with the encoder it was trained with."""
    device: str = "auto"
    overwrite: bool = False
    """Write into a non-empty --out, replace an existing --export file."""


def query(argv: list[str]) -> None:
    args = parse(QueryArgs, argv, "langfield query")
    if not args.texts or any(not t.strip() for t in args.texts):
        raise LangfieldError('give a non-empty query text, e.g. langfield query RUN "the red mug"')
    if args.frames < 1:
        raise LangfieldError(f"--frames must be at least 1, got {args.frames}")
    if is_photo(args.run):
        query_photo_file(args)
        return
    if args.encoder is not None:
        raise LangfieldError(f"--encoder is for photos: the run {args.run} queries with the encoder it trained with")
    import numpy as np

    from langfield.apps.query import open_query
    from langfield.atomic import fresh_file, fresh_folder
    from langfield.export.images import to_uint8, write_video
    from langfield.methods.lerf.heatmaps import overlay, slug, write_answer
    from langfield.ui import console, task_bar

    engine = open_query(args.run, args.device, args.canonical or None, args.scales or None, args.smoothing)
    texts = [t.strip() for t in args.texts]
    engine.text(texts)  # validates before any rendering
    out = fresh_folder(args.out, args.overwrite)
    if args.export:
        fresh_file(args.export, args.overwrite)
    if args.path == "orbit":
        from langfield.cameras import orbit_path

        cameras = orbit_path(engine.model.scene.cameras, args.frames)
        frames: list[list[np.ndarray]] = [[] for _ in texts]
        with task_bar("querying an orbit", args.frames) as advance:
            for i in range(args.frames):
                answer = engine.view(texts, i, cameras)
                for q in range(len(texts)):
                    frames[q].append(to_uint8(overlay(answer.rgb, answer.relevancy[q])))
                advance()
        for q, text in enumerate(texts):
            write_video(out / f"{slug(text)}_orbit.mp4", frames[q], fps=12)
            console.print(f"{text!r}: {out / (slug(text) + '_orbit.mp4')}")
    else:
        index = 0 if args.view is None else args.view
        answer = engine.view(texts, index)
        for record in write_answer(answer, out, index, engine.canonical):
            x, y = record["best_pixel"]
            console.print(
                f"{record['text']!r}: best pixel ({x}, {y}), 3D {record['best_point']}, relevancy "
                f"{record['relevancy']:.3f} -> {record['image']}"
            )
    if args.export:
        from langfield.export.images import colorize
        from langfield.export.ply import write_point_cloud

        positions, _, scores = engine.points(texts)
        colours = (colorize(scores[0].clamp(0.5, 1.0), 0.5, 1.0).numpy() * 255).astype(np.uint8)
        write_point_cloud(
            args.export,
            positions.numpy(),
            colours,
            {f"relevancy_{slug(t)}": scores[q].numpy() for q, t in enumerate(texts)},
        )
        console.print(f"wrote {args.export} ({len(positions):,} points)")


def is_photo(path: Path) -> bool:
    from langfield.process.inputs import PHOTO_SUFFIXES

    return path.is_file() and path.suffix.lower() in PHOTO_SUFFIXES


def query_photo_file(args: QueryArgs) -> None:
    """Heat-maps of the queries over the photograph ``args.run``."""
    run_only = {"--view": args.view is not None, "--path": args.path != "view", "--export": args.export is not None}
    for option, given in run_only.items():
        if given:
            raise LangfieldError(f"{option} needs a lerf run; {args.run} is a photo")
    from langfield.apps.photo_query import PHOTO_FRACTIONS, PHOTO_MAX_SIDE, PHOTO_SMOOTHING, query_photo
    from langfield.atomic import fresh_folder
    from langfield.core import resolve_device
    from langfield.encoders import load_encoder
    from langfield.export.images import read_image, save_png
    from langfield.methods.lerf.config import CANONICAL_PHRASES
    from langfield.methods.lerf.heatmaps import grid, write_maps
    from langfield.ui import console

    texts = [t.strip() for t in args.texts]
    image = read_image(args.run, max_side=PHOTO_MAX_SIDE)  # photos of any size; grayscale and RGBA converted
    encoder = load_encoder(args.encoder or "langfield-vision", resolve_device(args.device))
    if not encoder.has_text:
        raise LangfieldError(
            f"--encoder {encoder.name} has no text tower: queries need a vision-language encoder (langfield-vision, "
            "langfield-mini, a CLIP folder)"
        )
    out = fresh_folder(args.out, args.overwrite)
    canonical = args.canonical or CANONICAL_PHRASES
    smoothing = PHOTO_SMOOTHING if args.smoothing is None else args.smoothing
    answer = query_photo(image, texts, encoder, canonical, args.scales or PHOTO_FRACTIONS, smoothing=smoothing)
    extra = [{"photo": str(args.run), "encoder": encoder.name, "canonical": list(canonical)} for _ in texts]
    for record in write_maps(answer, out, "", extra):
        x, y = record["best_pixel"]
        relevant = record["relevancy"]
        console.print(f"{record['text']!r}: best pixel ({x}, {y}), relevancy {relevant:.3f} -> {record['image']}")
    save_png(out / "queries.png", grid(answer, scale=1, first="photo"))
    console.print(f"all queries: {out / 'queries.png'}")
