"""The lerf benchmark of BENCHMARKS.md: text localisation on procedural scenes with the embedded encoder.

    .venv/bin/python benchmarks/lerf.py                                   # 3 scenes, the default lerf
    .venv/bin/python benchmarks/lerf.py --seeds 2001 --variants no-dino single-scale   # the ablations

For every scene seed: writes the scene (6 objects, 100 views of 100x100, held-out views i % 8 == 0), trains each
variant through the CLI (`langfield train lerf ... --max-seconds S`, wall clock measured around the command), then
`langfield eval RUN --task localization` and the colour metrics. One JSON line per (scene, variant) is appended to
OUT/results.jsonl; a Markdown table of everything in that file is printed at the end.

Scene seeds must not be seeds the encoder was trained on: its training scenes are drawn with random 31-bit seeds
from (seed, index) streams; `--check-seeds` lists those and refuses a collision (cheap: no rendering).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from langfield.methods.lerf.config import LerfModelConfig

VARIANTS = {
    "lerf": [],
    "no-dino": ["--model.dino-weight", "0"],
    "single-scale": ["--model.crop-fractions", "0.2"],
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


def table(rows: list[dict]) -> str:
    lines = [
        "| scene | variant | train s | localisation | training wordings | evaluation wordings | queries | s / view "
        "(query) | PSNR |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {r['variant']} | {r['train_seconds']:.0f} | {100 * r['localization']:.1f} % | "
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
    parser.add_argument("--variants", nargs="+", default=["lerf"], choices=sorted(VARIANTS))
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/lerf"))
    parser.add_argument("--objects", type=int, default=6)
    parser.add_argument("--resolution", type=int, default=100)
    parser.add_argument("--table-only", action="store_true", help="print the table of OUT/results.jsonl and stop")
    parser.add_argument("--reuse", action="store_true", help="evaluate existing runs again instead of re-training them")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    if not args.table_only:
        from langfield.apps.localization import evaluate_localization, write_localization
        from langfield.encoders import load_encoder

        used = encoder_scene_seeds(load_encoder("langfield-mini").info)
        clash = sorted(set(args.seeds) & used)
        if clash:
            raise SystemExit(f"scene seeds {clash} were used to train the encoder; pick others")
        for seed in args.seeds:
            scene = args.out / f"scene{seed}"
            if not (scene / "objects.json").is_file():
                langfield(
                    "world",
                    "scene",
                    "--out",
                    scene,
                    "--seed",
                    seed,
                    "--objects",
                    args.objects,
                    "--resolution",
                    args.resolution,
                )
            for variant in args.variants:
                run = args.out / f"{variant}{seed}"
                wall = run / "benchmark_wall_seconds.txt"
                if not (args.reuse and wall.is_file()):
                    start = time.perf_counter()
                    langfield(
                        "train",
                        "lerf",
                        "--data",
                        scene,
                        "--output",
                        run,
                        "--max-seconds",
                        args.seconds,
                        "--seed",
                        0,
                        "--no-progress",
                        *VARIANTS[variant],
                    )
                    wall.write_text(f"{time.perf_counter() - start:.1f}\n")
                train_seconds = float(wall.read_text())
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
                        "variant": name,
                        "train_seconds": train_seconds,
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
