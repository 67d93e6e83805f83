"""The dreamfusion benchmark of BENCHMARKS.md: text-to-3D with the embedded prior, judged by the embedded CLIP.

    .venv/bin/python benchmarks/dreamfusion.py                       # 12 prompts, ~3 minutes each
    .venv/bin/python benchmarks/dreamfusion.py --seconds 300 --only 0 1
    .venv/bin/python benchmarks/dreamfusion.py --dev --out OUT --extra --model.sds.guidance-scale 10  # defaults

For each prompt: `langfield generate PROMPT --max-seconds S --seed 0`, all of them one `langfield batch`
(OUT/runs.toml; a prompt generated before is skipped; the wall clock of the whole command is recorded: training,
turntable, contact sheet and mesh), then 4 renders at azimuths 0/90/180/270° (elevation 20°, 64×64)
in colour and textureless, each classified by langfield-mini among all 108 "a {colour} {kind}" captions.
R-precision (DreamFusion's metric): a prompt is retrieved when >= 3 of its 4 views rank its caption first (colour
renders) or a caption of its kind first (textureless renders, which have no colour). The mesh is loaded with
trimesh: vertex / face counts, watertightness. One JSON line per prompt in OUT/results.jsonl; a Markdown table at
the end; OUT/turntables.png stacks the contact sheets of the first four prompts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from batching import job_seconds, run_batch, write_spec  # noqa: E402

# (prompt, colour, kind): training wordings of the procedural world, and evaluation-only wordings (marked *)
PROMPTS = [
    ("a red sphere", "red", "sphere"),
    ("a blue cube", "blue", "cube"),
    ("a green cylinder", "green", "cylinder"),
    ("a yellow cone", "yellow", "cone"),
    ("an orange torus", "orange", "torus"),
    ("a purple capsule", "purple", "capsule"),
    ("a pink mug", "pink", "mug"),
    ("a brown chair", "brown", "chair"),
    ("a crimson orb", "red", "sphere"),  # *
    ("an emerald block", "green", "cube"),  # *
    ("a navy blue drum", "blue", "cylinder"),  # *
    ("a glossy cyan coffee mug", "cyan", "mug"),  # * (coffee mug)
]
EVAL_ONLY = {8, 9, 10, 11}
# development prompts: other colour x kind pairs (no wording of PROMPTS), on which defaults are chosen
DEV_PROMPTS = [
    ("a red cube", "red", "cube"),
    ("a green cube", "green", "cube"),
    ("a blue sphere", "blue", "sphere"),
    ("a yellow torus", "yellow", "torus"),
    ("a purple mug", "purple", "mug"),
    ("an orange cone", "orange", "cone"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/dreamfusion"))
    parser.add_argument(
        "--seconds",
        type=float,
        default=300.0,
        help="--max-seconds of each generation (it also stops at the default 3,000 steps)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", type=int, nargs="*", help="indices of the prompt set to run (default: all)")
    parser.add_argument(
        "--dev", action="store_true", help="the development prompts (choosing defaults), not the benchmark's"
    )
    parser.add_argument("--cpus-per-job", type=float, default=2, help="each generation's CPUs (and torch threads)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="further options for langfield generate")
    args = parser.parse_args()
    import torch

    from langfield.apps.text_to_3d import r_precision, render_views
    from langfield.encoders import load_encoder
    from langfield.run import load_run

    args.out.mkdir(parents=True, exist_ok=True)
    encoder = load_encoder("langfield-mini")
    results = args.out / "results.jsonl"
    prompts = DEV_PROMPTS if args.dev else PROMPTS
    chosen = args.only if args.only is not None else range(len(prompts))
    # every prompt's generation as one batch (one at a time with all the cores unless --cpus-per-job is lower)
    jobs = []
    for index in chosen:
        prompt = prompts[index][0]
        name = f"{index:02d}-{prompt.replace(' ', '-')}"
        options = {"output": str(args.out / name), "max-seconds": args.seconds, "seed": args.seed, "progress": False}
        jobs.append({"command": "generate", "name": name, "args": [prompt, *args.extra], "options": options})
    table_folder = args.out / "runs-batch"
    run_batch(write_spec(args.out / "runs.toml", table_folder, args.cpus_per_job, jobs), args.num_cpus)
    for index in chosen:
        prompt, colour, kind = prompts[index]
        run = args.out / f"{index:02d}-{prompt.replace(' ', '-')}"
        wall = job_seconds(table_folder, run.name)
        model = load_run(run, "cpu").model
        colour_hits = r_precision(render_views(model), colour, kind, encoder)
        geometry_hits = r_precision(render_views(model, shading="textureless"), colour, kind, encoder, geometry=True)
        import trimesh

        mesh = trimesh.load(run / "mesh.glb", force="mesh")
        summary = json.loads((run / "train_summary.json").read_text())
        entry = {
            "prompt": prompt,
            "colour": colour,
            "kind": kind,
            "eval_wording": not args.dev and index in EVAL_ONLY,
            "seed": args.seed,
            "seconds_total": round(wall, 1),
            "steps": summary["steps"],
            "colour_views": sum(colour_hits),
            "geometry_views": sum(geometry_hits),
            "vertices": len(mesh.vertices),
            "faces": len(mesh.faces),
            "watertight": bool(mesh.is_watertight),
        }
        print(json.dumps(entry))
        with results.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")
        del model
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    table(results)
    sheets(args.out)


def table(results: Path) -> None:
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    print("| prompt | steps | total s | colour views | geometry views | vertices | faces | watertight |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        star = " *" if r["eval_wording"] else ""
        print(
            f"| {r['prompt']}{star} | {r['steps']} | {r['seconds_total']} | {r['colour_views']}/4 | "
            f"{r['geometry_views']}/4 | {r['vertices']} | {r['faces']} | {r['watertight']} |"
        )
    n = len(rows)
    colour = sum(r["colour_views"] >= 3 for r in rows)
    geometry = sum(r["geometry_views"] >= 3 for r in rows)
    print(
        f"\nR-precision (>= 3 of 4 views): colour {colour}/{n} = {100 * colour / n:.1f} %, geometry {geometry}/{n} = "
        f"{100 * geometry / n:.1f} %"
    )
    print(
        f"per view: colour {sum(r['colour_views'] for r in rows)}/{4 * n}, geometry "
        f"{sum(r['geometry_views'] for r in rows)}/{4 * n}; "
        f"slowest generation {max(r['seconds_total'] for r in rows):.0f} s"
    )


def sheets(out: Path) -> None:
    import numpy as np
    from PIL import Image

    images = [np.asarray(Image.open(p)) for p in sorted(out.glob("*/turntable.png"))[:4]]
    if images:
        gap = np.full((4, images[0].shape[1], 3), 255, np.uint8)
        stacked = np.concatenate([x for image in images for x in (image, gap)][:-1])
        Image.fromarray(stacked).save(out / "turntables.png")


if __name__ == "__main__":
    main()
