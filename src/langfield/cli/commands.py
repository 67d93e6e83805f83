"""The core commands: train, eval, render, export."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Optional

import tyro

from langfield.checks import ELEVATION, UNIT_OPEN, at_least, finite, positive
from langfield.cli.parsing import parse
from langfield.errors import LangfieldError
from langfield.methods.registry import METHODS, get_method


def train(argv: list[str]) -> None:
    if not argv or argv[0].startswith("-"):
        if argv and argv[0] in ("-h", "--help"):
            print("usage: langfield train METHOD [OPTIONS]\n\nmethods:")
            width = max(len(name) for name in METHODS) + 2
            for spec in METHODS.values():
                print(f"  {spec.name:<{width}} {spec.summary}")
            return
        raise LangfieldError(f"missing method: langfield train METHOD ... (available: {', '.join(METHODS)})")
    spec = get_method(argv[0])
    config = parse(spec.config, argv[1:], f"langfield train {spec.name}")
    from langfield.train.trainer import Trainer

    # under torchrun only rank 0 serves the viewer
    if not config.trainer.viewer or os.environ.get("RANK", "0") != "0":
        Trainer(spec, config).train()
        return
    from langfield.ui import console
    from langfield.viewer import Viewer

    viewer = Viewer(config.trainer.viewer_port, refresh=config.trainer.viewer_refresh)
    console.print(f"viewer at {viewer.url}")
    try:
        Trainer(spec, config, viewer).train()
    except BaseException:
        viewer.stop()
        raise
    console.print(f"training done; the viewer goes on at {viewer.url} (Ctrl-C to stop)")
    viewer.serve_forever()


@dataclass
class EvalArgs:
    """Render the held-out views of a run and write RUN/metrics.json (PSNR, SSIM, seconds per view)."""

    run: tyro.conf.Positional[Path]
    data: Optional[Path] = None
    """Dataset folder, if it moved since training."""
    save_images: bool = False
    """Write each render beside its ground truth under RUN/eval/."""
    task: Literal["rgb", "localization"] = "rgb"
    """rgb: PSNR / SSIM of the held-out views; localization (lerf runs on procedural scenes): does the most relevant
    pixel of each object's captions fall inside its mask (metrics.json gets the accuracy)."""
    device: str = "auto"


def evaluate(argv: list[str]) -> None:
    args = parse(EvalArgs, argv, "langfield eval")
    if args.task == "localization":
        from langfield.apps.localization import SUMMARY_KEYS, evaluate_localization, write_localization

        result = evaluate_localization(args.run, args.data, args.device)
        write_localization(args.run, result)
        print(json.dumps({k: result[k] for k in SUMMARY_KEYS}, indent=2))
        return
    from langfield.apps.evaluate import evaluate_run

    metrics = evaluate_run(args.run, args.data, args.save_images, args.device)
    summary = {k: metrics[k] for k in ("psnr", "ssim", "num_views", "seconds_per_view")}
    print(json.dumps(summary, indent=2))


@dataclass
class RenderArgs:
    """Render a camera path of a run: an MP4 video, or PNG frames when --out is a folder."""

    run: tyro.conf.Positional[Path]
    out: Path = Path("render.mp4")
    """FILE.mp4 for a video; a folder (DIR/ or a name without .mp4) for PNG frames."""
    path: Literal["orbit", "spiral", "train"] = "orbit"
    """orbit: a circle around the scene; spiral: forward-facing (LLFF); train: the training cameras."""
    frames: Annotated[int, at_least(1)] = 60
    fps: Annotated[int, at_least(1)] = 24
    output: Literal["rgb", "depth", "opacity"] = "rgb"
    scale: Annotated[float, positive()] = 1.0
    """Resolution relative to the training images."""
    elevation: Annotated[Optional[float], ELEVATION] = None
    """Orbit elevation in degrees (default: the training cameras' mean)."""
    radius: Annotated[Optional[float], positive()] = None
    """Orbit radius (default: the training cameras' mean distance)."""
    device: str = "auto"
    overwrite: bool = False
    """Replace an existing --out file, or write frames into a non-empty folder."""


def render(argv: list[str]) -> None:
    args = parse(RenderArgs, argv, "langfield render")
    from langfield.apps.video import is_video, render_path
    from langfield.atomic import fresh_file, fresh_folder
    from langfield.run import check_run

    check_run(args.run)  # not a run: one line before anything is written
    if is_video(args.out):
        fresh_file(args.out, args.overwrite)
    else:
        fresh_folder(args.out, args.overwrite)
    written = render_path(
        args.run,
        args.out,
        args.path,
        args.frames,
        args.fps,
        args.output,
        args.scale,
        args.elevation,
        args.radius,
        args.device,
    )
    print(f"wrote {written}")


@dataclass
class ExportArgs:
    """Export geometry of a run: a coloured point cloud or a marching-cubes mesh with vertex colours."""

    run: tyro.conf.Positional[Path]
    format: Literal["ply", "glb", "obj"] = "ply"
    out: Optional[Path] = None
    """Output file (default: RUN/export/<geometry>.<format>)."""
    geometry: Literal["auto", "mesh", "points"] = "auto"
    """auto: a point cloud for ply, a mesh for glb and obj."""
    resolution: Annotated[int, at_least(8)] = 256
    """Marching-cubes lattice points along the longest axis."""
    threshold: Annotated[Optional[float], finite()] = None
    """Density level of the mesh surface (default: half the 99.5th percentile of the field's density)."""
    max_points: Annotated[int, at_least(1)] = 200_000
    min_opacity: Annotated[float, UNIT_OPEN] = 0.9
    """Point clouds keep pixels whose rendered opacity exceeds this."""
    device: str = "auto"
    overwrite: bool = False
    """Replace an existing --out file."""


def export(argv: list[str]) -> None:
    args = parse(ExportArgs, argv, "langfield export")
    from langfield.atomic import fresh_file
    from langfield.export.geometry import extract_mesh, extract_points, save_mesh
    from langfield.export.ply import write_point_cloud
    from langfield.run import check_run, load_run

    geometry = args.geometry if args.geometry != "auto" else ("points" if args.format == "ply" else "mesh")
    if geometry == "points" and args.format != "ply":
        raise LangfieldError(f"point clouds are written as PLY, not {args.format}")
    out = args.out or Path(args.run) / "export" / f"{geometry}.{args.format}"
    if out.suffix.lower() != f".{args.format}":
        raise LangfieldError(f"--out {out}: the file name must end in .{args.format} (the --format)")
    check_run(args.run)
    fresh_file(out, args.overwrite)
    run = load_run(args.run, args.device)
    if geometry == "points":
        points, colors = extract_points(run.model, run.scene.cameras, args.max_points, args.min_opacity)
        write_point_cloud(out, points, colors)
        print(f"wrote {out} ({len(points)} points)")
    else:
        aabb = getattr(run.model, "aabb", run.scene.aabb).detach().cpu()
        mesh = extract_mesh(run.model, aabb, args.resolution, args.threshold)
        save_mesh(mesh, out)
        print(f"wrote {out} ({len(mesh.vertices)} vertices, {len(mesh.faces)} faces)")
