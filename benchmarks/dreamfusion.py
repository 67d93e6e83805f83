"""The dreamfusion benchmark of BENCHMARKS.md: text-to-3D with the embedded prior, judged by the embedded CLIP.

    .venv/bin/python benchmarks/dreamfusion.py                       # 12 prompts, ~3 minutes each
    .venv/bin/python benchmarks/dreamfusion.py --seconds 300 --only 0 1
    .venv/bin/python benchmarks/dreamfusion.py --dev --out OUT --extra --model.sds.guidance-scale 10  # defaults

For each prompt: `langfield generate PROMPT --max-seconds S --seed 0`, all of them one `langfield batch`
(OUT/runs.toml; a prompt generated before is skipped; the wall clock of the whole command is recorded: training,
turntable, contact sheet and mesh), then 4 renders at azimuths 0/90/180/270° (elevation 20°, 64×64)
in colour and textureless, each classified by langfield-mini among all 108 "a {colour} {kind}" captions.
R-precision (DreamFusion's metric): a prompt is retrieved when >= 3 of its 4 views rank its caption first (colour
renders) or a caption of its kind first (textureless renders, which have no colour). The prior was trained on
langfield-mini's text embeddings, so the same renders are graded again by langfield-vision (a real ImageNet backbone
under its own head) and, for mug / chair prompts, by the backbone's ImageNet classifier itself: a 128×128 colour
render counts when one of its kind's ImageNet classes is in the top 5 (`imagenet_hits`); beside it, the classifier's
rate on 100 renders per kind of the procedural world itself at the same size (what a perfect object scores). The
mesh is loaded with
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

    from langfield.apps.text_to_3d import IMAGENET_KINDS, imagenet_hits, r_precision, render_views
    from langfield.encoders import load_encoder
    from langfield.run import load_run

    args.out.mkdir(parents=True, exist_ok=True)
    encoder = load_encoder("langfield-mini")
    graders = {"vision": load_encoder("langfield-vision")}
    classifier = load_encoder("efficientnet-lite0")
    results = args.out / "results.jsonl"
    results.unlink(missing_ok=True)  # graded afresh: runs generated before are skipped by the batch, not re-scored
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
        colour_hits = r_precision(render_views(model), colour, kind, encoder)  # langfield-mini
        textureless = render_views(model, shading="textureless")
        geometry_hits = r_precision(textureless, colour, kind, encoder, geometry=True)
        colour_renders = render_views(model)
        other = {}
        for grader_name, grader in graders.items():
            other[f"{grader_name}_colour_views"] = sum(r_precision(colour_renders, colour, kind, grader))
            other[f"{grader_name}_geometry_views"] = sum(r_precision(textureless, colour, kind, grader, geometry=True))
        if kind in IMAGENET_KINDS:
            other["imagenet_views"] = sum(imagenet_hits(render_views(model, resolution=128), kind, classifier))
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
            **other,
        }
        print(json.dumps(entry))
        with results.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")
        del model
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    reference = imagenet_reference(classifier, sorted({prompts[i][2] for i in chosen} & set(IMAGENET_KINDS)))
    (args.out / "imagenet_reference.json").write_text(json.dumps(reference, indent=1))
    table(results, reference)
    sheets(args.out)


def imagenet_reference(classifier, kinds: list[str], count: int = 100, resolution: int = 128) -> dict:
    """The ImageNet classifier's top-5 hit rate on ``count`` renders of each kind of the procedural world."""
    import torch

    from langfield.apps.text_to_3d import imagenet_hits
    from langfield.world.images import object_images

    rates = {}
    for kind in kinds:
        images = torch.stack([item.image for item in object_images(1001, count, resolution, kinds=[kind])])
        rates[kind] = sum(imagenet_hits(images, kind, classifier)) / count
    return rates


def table(results: Path, reference: dict) -> None:
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    print(
        "| prompt | steps | total s | colour views | geometry views | vision colour | vision geometry | ImageNet top-5 "
        "| vertices | faces | watertight |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        star = " *" if r["eval_wording"] else ""
        imagenet = f"{r['imagenet_views']}/4" if "imagenet_views" in r else "–"
        print(
            f"| {r['prompt']}{star} | {r['steps']} | {r['seconds_total']} | {r['colour_views']}/4 | "
            f"{r['geometry_views']}/4 | {r['vision_colour_views']}/4 | {r['vision_geometry_views']}/4 | {imagenet} | "
            f"{r['vertices']} | {r['faces']} | {r['watertight']} |"
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
    vision_colour = sum(r["vision_colour_views"] >= 3 for r in rows)
    vision_geometry = sum(r["vision_geometry_views"] >= 3 for r in rows)
    print(
        f"graded by langfield-vision: colour {vision_colour}/{n} = {100 * vision_colour / n:.1f} %, geometry "
        f"{vision_geometry}/{n} = {100 * vision_geometry / n:.1f} %; per view colour "
        f"{sum(r['vision_colour_views'] for r in rows)}/{4 * n}, geometry "
        f"{sum(r['vision_geometry_views'] for r in rows)}/{4 * n}"
    )
    graded = [r for r in rows if "imagenet_views" in r]
    if graded:
        hits = sum(r["imagenet_views"] for r in graded)
        world = ", ".join(f"{kind} {100 * rate:.0f} %" for kind, rate in reference.items())
        print(
            f"ImageNet classifier, a class of the kind in the top 5: {hits}/{4 * len(graded)} views of "
            f"{len(graded)} prompts; on renders of the procedural world itself: {world}"
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
