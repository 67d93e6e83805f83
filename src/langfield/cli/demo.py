"""``langfield demo``: the README's main command. Offline, a few minutes on 2 cores: generates a procedural
table-top scene, trains ``lerf`` on it (the radiance field and its language field, with the embedded encoder),
evaluates colour on held-out views and text localisation against the scene's exact masks, answers a few queries with
heat-maps, renders an orbit video and exports a mesh and a point cloud."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional, Tuple

from langfield.checks import SEED, at_least, positive
from langfield.cli.parsing import parse


@dataclass
class DemoArgs:
    """Run the offline demo and write its results to --out."""

    out: Path = Path("langfield-demo")
    data: Optional[Path] = None
    """Dataset to use instead of a generated procedural scene (e.g. ../shared/data/lego with --downscale 8)."""
    seed: Annotated[int, SEED] = 0
    """Seed of the generated scene."""
    seconds: Annotated[float, positive()] = 240.0
    """Training time budget."""
    downscale: Annotated[int, at_least(1)] = 1
    frames: Annotated[int, at_least(1)] = 48
    queries: Tuple[str, ...] = ()
    """Texts to look for (default on a generated scene: one caption per object; with --data: none)."""
    overwrite: bool = False
    """Write into a non-empty --out that an earlier demo did not make (its demo files are replaced)."""


#: marks a folder the demo made: only such a folder (or an empty one) is reused without --overwrite
DEMO_MARKER = ".langfield-demo"


def demo(argv: list[str]) -> None:
    args = parse(DemoArgs, argv, "langfield demo")
    from langfield.apps.evaluate import evaluate_run
    from langfield.apps.video import render_path
    from langfield.atomic import fresh_folder, write_json
    from langfield.cli.commands import export
    from langfield.data.config import DataConfig
    from langfield.methods.lerf.config import LerfConfig
    from langfield.methods.registry import get_method
    from langfield.train.trainer import Trainer
    from langfield.ui import console, styled

    fresh_folder(args.out, args.overwrite, owned_marker=DEMO_MARKER)
    (args.out / DEMO_MARKER).touch()
    data = args.data
    if data is None:
        from langfield.world.dataset import write_scene_dataset

        data = args.out / "scene"
        scene = write_scene_dataset(data, seed=args.seed, objects=6, views=100, resolution=100)
        names = ", ".join(f"{o.attributes.color} {o.attributes.kind}" for o in scene.objects)
        console.print(f"generated a procedural scene in {data}: {names}")
    run = args.out / "lerf"
    if run.is_dir():  # the demo's own run of an earlier demo (the folder is the demo's or --overwrite was given)
        shutil.rmtree(run)
    console.print(styled(("langfield demo", "bold"), f": training `lerf` on {data} for {args.seconds:.0f} s"))
    # start from the method's own defaults (its batch size among them) and set only what the demo chooses
    config = LerfConfig(output=run, data=DataConfig(data=data, downscale=args.downscale))
    config.trainer.max_seconds = args.seconds
    Trainer(get_method("lerf"), config).train()
    metrics = evaluate_run(run, save_images=True)
    console.print(
        f"held-out views: PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f}, "
        f"{metrics['seconds_per_view']:.2f} s per view"
    )
    summary = {"run": str(run), "metrics": str(run / "metrics.json"), "held_out_renders": str(run / "eval")}
    objects = Path(data) / "objects.json"
    queries = list(args.queries)
    if objects.is_file():
        located = localization_report(run)
        summary["localization"] = located["localization"]
        console.print(
            f"text localisation on held-out views: {100 * located['localization']:.1f} % of {located['queries']} "
            "queries "
            f"(training wordings {100 * located['localization_train_wording']:.1f} %, unseen wordings "
            f"{100 * located['localization_eval_wording']:.1f} %)"
        )
        if not queries:
            queries = [o["captions"]["train"][0] for o in json.loads(objects.read_text())["objects"]]
    if queries:
        summary["queries"] = str(write_demo_queries(run, queries, args.out / "queries"))
    video = render_path(run, args.out / "orbit.mp4", "orbit", frames=args.frames)
    export([str(run), "--format", "glb", "--out", str(args.out / "mesh.glb"), "--overwrite"])
    export([str(run), "--format", "ply", "--out", str(args.out / "points.ply"), "--overwrite"])
    summary.update(
        {
            "video": str(video),
            "mesh": str(args.out / "mesh.glb"),
            "point_cloud": str(args.out / "points.ply"),
            "psnr": metrics["psnr"],
            "ssim": metrics["ssim"],
        }
    )
    write_json(args.out / "summary.json", summary)
    console.print(styled(("done", "bold green"), f": results in {args.out.resolve()}"))
    for key, value in summary.items():
        if key not in ("psnr", "ssim", "localization"):
            console.print(f"  {key:<17} {value}")


def localization_report(run: Path) -> dict:
    from langfield.apps.localization import evaluate_localization, write_localization

    result = evaluate_localization(run)
    write_localization(run, result)
    return result


def write_demo_queries(run: Path, texts: list[str], out: Path) -> Path:
    """Heat-maps of ``texts`` in the first held-out view (a grid image plus each query's files)."""
    from langfield.apps.query import open_query
    from langfield.data import load_dataset
    from langfield.export.images import save_png
    from langfield.methods.lerf.heatmaps import grid, write_answer
    from langfield.run import read_run_config
    from langfield.ui import console

    engine = open_query(run)
    _, config = read_run_config(run)
    dataset = load_dataset(config.data)
    index = dataset.test_indices[0] if dataset.test_indices else 0
    answer = engine.view(texts, index, cameras=dataset.cameras)
    write_answer(answer, out, index, engine.canonical)
    save_png(out / "queries.png", grid(answer, truth=dataset.rgb(index)))
    console.print(f"queries in held-out view {index}: {out / 'queries.png'}")
    return out / "queries.png"
