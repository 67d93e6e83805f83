"""The lerf benchmark of BENCHMARKS.md: text localisation on procedural scenes with the embedded encoder.

    .venv/bin/python benchmarks/lerf.py                                   # 3 scenes, the default lerf
    .venv/bin/python benchmarks/lerf.py --seeds 2001 --variants no-dino single-scale   # the ablations
    .venv/bin/python benchmarks/lerf.py --variants lerf real-dense       # EfficientNet-Lite0's dense map as DINO
    .venv/bin/python benchmarks/lerf.py --steps 200 --cpus-per-job 1 --out benchmarks/out/lerf-parallel  # 2 at once
    .venv/bin/python benchmarks/lerf.py --seeds 2101 2102 2103 2104 2105 --views 60 --out benchmarks/out/lerf-fresh

For every scene seed: writes the scene (6 objects, 100 views of 100x100, held-out views i % 8 == 0), trains each
variant (`langfield train lerf ... --max-seconds S`, the wall clock of the command), then the colour metrics and the
localisation. The scenes and the trainings are two `langfield batch` runs (OUT/scenes.toml, OUT/runs.toml, tables
in OUT/scenes-batch/ and OUT/runs-batch/): runs that finished are not trained again, and `--cpus-per-job 1` trains
two scenes at once on 2 cores. One JSON line per (scene, variant, training seed) is appended to OUT/results.jsonl;
a Markdown table of everything in that file is printed at the end.

Scene seeds must not be seeds the encoder was trained on: its training scenes are drawn with random 31-bit seeds
from (seed, index) streams; the script refuses a collision before anything is rendered.

One scene's localisation moves by several points with the training seed alone (scene 2001, 1,100 steps: 82.5 to
88.7 % over training seeds 0-2, BENCHMARKS.md): `--train-seeds 0 1 2` trains each (scene, variant) once per seed
(runs VARIANTSCENE for seed 0, VARIANTSCENE-tK for seed K) and the table's means are over all of them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from batching import job_seconds, run_batch, write_spec  # noqa: E402

from langfield.methods.lerf.config import LerfModelConfig  # noqa: E402

VARIANTS = {
    "lerf": [],
    "no-dino": ["--model.dino-weight", "0"],
    "single-scale": ["--model.crop-fractions", "0.2"],
    # issue 27: the real backbone's stride-8 map in the DINO role (the language targets stay the default encoder's)
    "real-dense": ["--model.dense-encoder", "efficientnet-lite0"],
}


ALL_SCALES = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
DEFAULT_QUERY = {"fractions": LerfModelConfig.query_fractions, "smoothing": LerfModelConfig.query_smoothing}
QUERY_VARIANTS = {  # the same trained run, other query settings
    "lerf, no smoothing": {"fractions": LerfModelConfig.query_fractions, "smoothing": 0.0},
    "lerf, query scales 5-50 %": {"fractions": ALL_SCALES, "smoothing": LerfModelConfig.query_smoothing},
    "lerf, neither (LERF's raw argmax)": {"fractions": ALL_SCALES, "smoothing": 0.0},
}


def encoder_scene_seeds(encoder_info: dict) -> set[int]:
    """Scene seeds drawn by the encoder's crop and background training data (see langfield.world.images)."""
    seeds = set()
    for key, count_key, salt in (("crop_seed", "crop_images", 7), ("background_seed", "background_crops", 11)):
        for i in range(int(encoder_info.get(count_key, 0))):
            seeds.add(int(np.random.default_rng([int(encoder_info[key]), i, salt]).integers(2**31)))
    return seeds


def langfield(*args: str) -> None:
    command = [str(Path(sys.executable).with_name("langfield")), *map(str, args)]
    subprocess.run(command, check=True)


def seed_note(row: dict) -> str:
    return f" (training seed {row['train_seed']})" if row.get("train_seed", 0) else ""


def table(rows: list[dict]) -> str:
    lines = [
        "| scene | variant | train s | localisation | training wordings | evaluation wordings | queries | s / view "
        "(query) | PSNR |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']}{seed_note(r)} | {r['variant']} | {r['train_seconds']:.0f} | "
            f"{100 * r['localization']:.1f} % | "
            f"{100 * r['localization_train_wording']:.1f} % | "
            f"{100 * r['localization_eval_wording']:.1f} % | {r['queries']} | "
            f"{r['localization_seconds_per_view']:.2f} | {r['psnr']:.2f} |"
        )
    by_variant: dict[str, list[dict]] = {}
    for r in rows:
        by_variant.setdefault(r["variant"], []).append(r)
    for variant, group in by_variant.items():
        mean = lambda key: sum(r[key] for r in group) / len(group)  # noqa: E731
        lines.append(
            f"| **mean of {len(group)}** | {variant} | {mean('train_seconds'):.0f} | "
            f"**{100 * mean('localization'):.1f} %** | {100 * mean('localization_train_wording'):.1f} % | "
            f"{100 * mean('localization_eval_wording'):.1f} % | {sum(r['queries'] for r in group)} | "
            f"{mean('localization_seconds_per_view'):.2f} | {mean('psnr'):.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[2001, 2002, 2003])
    parser.add_argument("--train-seeds", type=int, nargs="+", default=[0], help="training seeds of every run")
    parser.add_argument("--variants", nargs="+", default=["lerf"], choices=sorted(VARIANTS))
    parser.add_argument("--seconds", type=float, default=600.0, help="training budget per run (wall clock)")
    parser.add_argument("--steps", type=int, help="a step budget instead of --seconds (for comparing schedules)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/lerf"))
    parser.add_argument("--scenes", type=Path, help="folder of the scenes (default: OUT); shared between OUTs")
    parser.add_argument("--cpus-per-job", type=float, default=2, help="each run's CPUs (and torch threads)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    parser.add_argument("--objects", type=int, default=6)
    parser.add_argument("--resolution", type=int, default=100)
    parser.add_argument("--views", type=int, default=100, help="views per scene (held out: i % 8 == 0)")
    parser.add_argument("--table-only", action="store_true", help="print the table of OUT/results.jsonl and stop")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    scenes = args.scenes or args.out
    results = args.out / "results.jsonl"
    if not args.table_only:
        from langfield.apps.localization import evaluate_localization, write_localization
        from langfield.encoders import load_encoder

        used = encoder_scene_seeds(load_encoder("langfield-mini").info)
        clash = sorted(set(args.seeds) & used)
        if clash:
            raise SystemExit(f"scene seeds {clash} were used to train the encoder; pick others")
        # the scenes, then every (scene, variant) training: two batches (jobs that finished before are skipped)
        scene_jobs = [
            {
                "command": "world scene",
                "name": f"scene{seed}",
                "options": {
                    "out": str(scenes / f"scene{seed}"),
                    "seed": seed,
                    "objects": args.objects,
                    "resolution": args.resolution,
                    "views": args.views,
                },
            }
            for seed in args.seeds
            if not (scenes / f"scene{seed}" / "objects.json").is_file()  # made before, by a batch or not
        ]
        if scene_jobs:
            run_batch(write_spec(args.out / "scenes.toml", scenes / "scenes-batch", 1, scene_jobs), args.num_cpus)
        budget = {"max-steps": args.steps} if args.steps else {"max-seconds": args.seconds}
        train_jobs, trained = [], []
        for seed in args.seeds:
            for variant in args.variants:
                extra = VARIANTS[variant]
                for train_seed in args.train_seeds:
                    run_name = f"{variant}{seed}" + (f"-t{train_seed}" if train_seed else "")
                    trained.append((seed, train_seed, variant, args.out / run_name))
                    train_jobs.append(
                        {
                            "command": "train lerf",
                            "name": run_name,
                            "options": {
                                "data": str(scenes / f"scene{seed}"),
                                "output": str(args.out / run_name),
                                **budget,
                                "seed": train_seed,
                                "progress": False,
                                **{extra[i].removeprefix("--"): extra[i + 1] for i in range(0, len(extra), 2)},
                            },
                        }
                    )
        spec = write_spec(args.out / "runs.toml", args.out / "runs-batch", args.cpus_per_job, train_jobs)
        wall = run_batch(spec, args.num_cpus)
        print(f"training batch: {wall:.0f} s wall clock for {len(train_jobs)} runs")
        for seed, train_seed, variant, run in trained:
            train_seconds = job_seconds(args.out / "runs-batch", run.name)  # the whole `langfield train` command
            langfield("eval", run)
            rgb = json.loads((run / "metrics.json").read_text())
            queries = [(variant, DEFAULT_QUERY)]
            if variant == "lerf":  # query-time ablations of the same run
                queries += list(QUERY_VARIANTS.items())
            for name, options in queries:
                # explicit query settings: a run's config.json keeps the defaults of the day it was trained
                metrics = evaluate_localization(run, progress=False, **options)
                if name == variant:
                    write_localization(run, metrics)
                row = {
                    "seed": seed,
                    "train_seed": train_seed,
                    "variant": name,
                    "train_seconds": train_seconds,
                    "steps": json.loads((run / "train_summary.json").read_text())["steps"],
                    "psnr": rgb["psnr"],
                    "ssim": rgb["ssim"],
                    **{
                        k: metrics[k]
                        for k in (
                            "localization",
                            "localization_train_wording",
                            "localization_eval_wording",
                            "queries",
                            "localization_seconds_per_view",
                            "per_object",
                        )
                    },
                }
                with results.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row))
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()] if results.is_file() else []
    print(table(rows))


if __name__ == "__main__":
    main()
