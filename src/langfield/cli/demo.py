"""``langfield demo``: the README's main command. Offline, a few minutes on 2 cores: generates a procedural
table-top scene, trains the default ``nerf`` method on it, evaluates it on held-out views, renders an orbit video
and exports a mesh and a point cloud."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import tyro



@dataclass
class DemoArgs:
    """Run the offline demo and write its results to --out."""

    out: Path = Path("langfield-demo")
    data: Optional[Path] = None
    """Dataset to use instead of a generated procedural scene (e.g. ../shared/data/lego with --downscale 8)."""
    seed: int = 0
    """Seed of the generated scene."""
    seconds: float = 150.0
    """Training time budget."""
    downscale: int = 1
    frames: int = 48


def demo(argv: list[str]) -> None:
    args = tyro.cli(DemoArgs, args=argv, prog="langfield demo")
    from langfield.cli.commands import export
    from langfield.data.config import DataConfig
    from langfield.evaluate import evaluate_run
    from langfield.methods.nerf.config import NerfConfig
    from langfield.render.video import render_path
    from langfield.train.trainer import Trainer
    from langfield.ui import console

    data = args.data
    if data is None:
        from langfield.world.dataset import write_scene_dataset

        data = args.out / "scene"
        scene = write_scene_dataset(data, seed=args.seed, objects=6, views=100, resolution=100)
        names = ", ".join(f"{o.attributes.color} {o.attributes.kind}" for o in scene.objects)
        console.print(f"generated a procedural scene in {data}: {names}")
    run = args.out / "nerf"
    if (run / "config.json").is_file():
        shutil.rmtree(run)
    console.print(f"[bold]langfield demo[/bold]: training `nerf` on {data} for {args.seconds:.0f} s")
    # start from the method's own defaults (its batch size among them) and set only what the demo chooses
    config = NerfConfig(output=run, data=DataConfig(data=data, downscale=args.downscale))
    config.trainer.max_seconds = args.seconds
    Trainer("nerf", config).train()
    metrics = evaluate_run(run, save_images=True)
    console.print(f"held-out views: PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f}, {metrics['seconds_per_view']:.2f} s per view")
    video = render_path(
        SimpleNamespace(run=run, out=args.out / "orbit.mp4", path="orbit", frames=args.frames, fps=24, output="rgb", scale=1.0, elevation=None, radius=None, device="auto")
    )
    export([str(run), "--format", "glb", "--out", str(args.out / "mesh.glb")])
    export([str(run), "--format", "ply", "--out", str(args.out / "points.ply")])
    summary = {
        "run": str(run),
        "metrics": str(run / "metrics.json"),
        "held_out_renders": str(run / "eval"),
        "video": str(video),
        "mesh": str(args.out / "mesh.glb"),
        "point_cloud": str(args.out / "points.ply"),
        "psnr": metrics["psnr"],
        "ssim": metrics["ssim"],
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"[bold green]done[/bold green]: results in {args.out.resolve()}")
    for key, value in summary.items():
        if key not in ("psnr", "ssim"):
            console.print(f"  {key:<17} {value}")
