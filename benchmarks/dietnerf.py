"""The dietnerf benchmark of BENCHMARKS.md: few-view reconstruction, `nerf` vs `dietnerf`, held-out PSNR / SSIM.

    .venv/bin/python benchmarks/dietnerf.py                     # lego + a procedural scene, 5 variants each
    .venv/bin/python benchmarks/dietnerf.py --scenes procedural --seeds 0 1 2

Every scene is trained on 8 views drawn by `--view-seed 0` among its non-held-out views and evaluated on all its
held-out views (i % 8 == 0). Every variant gets the same training seed, step count and time budget
(`--max-steps`, `--max-seconds`); the wall clock of each `langfield train` is recorded. One JSON line per
(scene, seed, variant) is appended to OUT/results.jsonl; a Markdown table of that file is printed at the end, and
OUT/side_by_side_SCENE.png shows the first held-out view: nerf | dietnerf (or --side-by-side) | ground truth
(`--images-only` also stacks the scenes into OUT/side_by_side-SEED.png, the image of BENCHMARKS.md).

Variants: `nerf`; `dietnerf` (its defaults: the embedded encoder, langfield-mini, and the semantic loss for the first
half of training, then the training views alone: the paper's "DietNeRF, ft"); `dietnerf-throughout` (the loss to the
end: the paper's plain DietNeRF); `dietnerf-random`, `dietnerf-random-throughout` (the same with the encoder's
architecture at random weights: the control for what the encoder's training contributes); `dietnerf-real` (the
defaults with the real ImageNet backbone, EfficientNet-Lite0 at 128 px, as the encoder). `--views 4` trains on 4
views instead (drawn by the same `--view-seed 0`); each row records its view count.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).parent))
from batching import job_seconds, run_batch, write_spec  # noqa: E402
from lerf import encoder_scene_seeds  # noqa: E402

VARIANTS = {
    "nerf": ["nerf"],
    # the defaults: the semantic loss for the first half of training, then colours alone (the paper's "DietNeRF, ft")
    "dietnerf": ["dietnerf"],
    "dietnerf-random": ["dietnerf", "--model.encoder", "langfield-mini-random"],
    # the semantic loss on the real ImageNet backbone's pooled features (issue 27), at 128 px, the same lambda
    "dietnerf-real": ["dietnerf", "--model.encoder", "efficientnet-lite0@128"],
    # the paper's plain DietNeRF: the semantic loss to the end
    "dietnerf-throughout": ["dietnerf", "--model.semantic-until", 1],
    "dietnerf-random-throughout": ["dietnerf", "--model.semantic-until", 1, "--model.encoder", "langfield-mini-random"],
}
# the procedural scene: 3 objects on a table, neither one of the encoder's training scenes nor the development scene
# (seed 3001) on which lambda was chosen
PROCEDURAL_SEED = 3002
# the benchmark's view count (`--views` changes it; runs and table rows of other counts are named by theirs)
VIEWS = 8


def langfield(*args) -> None:
    subprocess.run([str(Path(sys.executable).with_name("langfield")), *map(str, args)], check=True)


def scene_data(name: str, out: Path, lego: Path) -> list[str]:
    if name == "lego":
        return ["--data", lego, "--downscale", 8]
    scene = out / f"scene{PROCEDURAL_SEED}"
    if not (scene / "objects.json").is_file():
        from langfield.encoders import load_encoder

        if PROCEDURAL_SEED in encoder_scene_seeds(load_encoder("langfield-mini").info):
            raise SystemExit(f"scene seed {PROCEDURAL_SEED} was used to train the encoder; pick another")
        langfield("world", "scene", "--out", scene, "--seed", PROCEDURAL_SEED, "--objects", 3)
    return ["--data", scene]


def run_name(scene: str, variant: str, seed: int, views: int) -> str:
    return f"{scene}-{variant}-{seed}" + ("" if views == VIEWS else f"-{views}views")


def side_by_side(out: Path, scene: str, seed: int, variant: str, view_count: int = VIEWS):
    """The first held-out view (chosen before looking at results): nerf | variant | ground truth, 3x enlarged;
    written to OUT/side_by_side_SCENE.png and returned."""
    from PIL import Image

    runs = {v: out / run_name(scene, v, seed, view_count) for v in ("nerf", variant)}
    views = {
        v: {m["file"]: m["psnr"] for m in json.loads((r / "metrics.json").read_text())["views"]}
        for v, r in runs.items()
    }
    file = next(iter(views["nerf"]))
    for run in runs.values():
        langfield("eval", run, "--save-images")
    stem = Path(file).stem
    tiles = [
        Image.open(runs["nerf"] / "eval" / f"{stem}_render.png"),
        Image.open(runs[variant] / "eval" / f"{stem}_render.png"),
        Image.open(runs["nerf"] / "eval" / f"{stem}_gt.png"),
    ]
    w, h = tiles[0].size
    strip = Image.new("RGB", (3 * w, h), "white")
    for i, tile in enumerate(tiles):
        strip.paste(tile.convert("RGB"), (i * w, 0))
    strip = strip.resize((9 * w, 3 * h), Image.NEAREST)
    strip.save(out / f"side_by_side_{scene}.png")
    print(
        f"{scene} {file}: nerf {views['nerf'][file]:.2f} dB, {variant} {views[variant][file]:.2f} dB -> "
        f"{out / f'side_by_side_{scene}.png'}"
    )
    return strip


def stack(strips: list, path: Path) -> None:
    """The scenes' strips one above the other (the image of BENCHMARKS.md)."""
    from PIL import Image

    image = Image.new("RGB", (max(s.width for s in strips), sum(s.height for s in strips)), "white")
    y = 0
    for strip in strips:
        image.paste(strip, (0, y))
        y += strip.height
    image.save(path)
    print(f"-> {path}")


def _label(row: dict) -> str:
    """The scene's name in the table, with its view count when it is not the benchmark's 8."""
    views = row.get("views", VIEWS)
    return row["scene"] if views == VIEWS else f"{row['scene']}, {views} views"


def table(rows: list[dict]) -> str:
    """Markdown: one row per run (the latest of repeated runs), ordered by scene, seed and variant, with the PSNR
    difference to `nerf` of the same scene and seed; then the mean of every (scene, variant) run with several seeds."""
    rows = [{**r, "scene": _label(r)} for r in rows]
    latest = {(r["scene"], r["seed"], r["variant"]): r for r in rows}
    order = list(VARIANTS)
    rows = sorted(latest.values(), key=lambda r: (r["scene"], r["seed"], order.index(r["variant"])))

    def delta(r: dict) -> Optional[float]:
        base = latest.get((r["scene"], r["seed"], "nerf"))
        return None if base is None or r["variant"] == "nerf" else r["psnr"] - base["psnr"]

    def fmt(d: Optional[float]) -> str:
        return "" if d is None else f"{d:+.2f}"

    def mean(values: list) -> Optional[float]:
        return None if None in values else sum(values) / len(values)

    lines = [
        "| scene | variant | seed | steps | train s (wall) | held-out PSNR | vs nerf | held-out SSIM |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['scene']} | {r['variant']} | {r['seed']} | {r['steps']} | {r['wall']:.0f} | {r['psnr']:.2f} | "
            f"{fmt(delta(r))} "
            f"| {r['ssim']:.3f} |"
        )
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["scene"], r["variant"]), []).append(r)
    for (scene, variant), group in groups.items():
        if len(group) > 1:
            seeds = ",".join(str(r["seed"]) for r in group)
            lines.append(
                f"| **{scene}, mean** | {variant} | {seeds} | {mean([r['steps'] for r in group]):.0f} | "
                f"{mean([r['wall'] for r in group]):.0f} | **{mean([r['psnr'] for r in group]):.2f}** | "
                f"{fmt(mean([delta(r) for r in group]))} | {mean([r['ssim'] for r in group]):.3f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", nargs="+", default=["lego", "procedural"], choices=["lego", "procedural"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="training seeds (the views stay those of --view-seed 0)"
    )
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=900.0)
    parser.add_argument("--views", type=int, default=VIEWS)
    parser.add_argument("--lego", type=Path, default=Path("../shared/data/lego"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/dietnerf"))
    parser.add_argument(
        "--side-by-side", default="dietnerf", choices=list(VARIANTS)[1:], help="the variant shown beside nerf"
    )
    parser.add_argument("--cpus-per-job", type=float, default=2, help="each run's CPUs (and torch threads)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    parser.add_argument("--table-only", action="store_true", help="print the table of OUT/results.jsonl and stop")
    parser.add_argument(
        "--images-only", action="store_true", help="redo the side-by-side images of existing runs and stop"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    if args.images_only:
        for seed in args.seeds:
            strips = [side_by_side(args.out, scene, seed, args.side_by_side, args.views) for scene in args.scenes]
            stack(strips, args.out / f"side_by_side-{seed}.png")
        return
    if not args.table_only:
        # every (scene, seed, variant) training as one batch: by default one at a time with all the cores, as the
        # time budget needs (--cpus-per-job 1 trains two at once on 2 cores: a smaller budget each)
        jobs, runs = [], []
        for scene in args.scenes:
            data = scene_data(scene, args.out, args.lego)
            for seed in args.seeds:
                for variant in args.variants:
                    name = run_name(scene, variant, seed, args.views)
                    runs.append((scene, seed, variant, args.out / name))
                    method, *extra = VARIANTS[variant]
                    options = {
                        "output": str(args.out / name),
                        "num-views": args.views,
                        "view-seed": 0,
                        "seed": seed,
                        "max-steps": args.steps,
                        "max-seconds": args.seconds,
                        "eval-every": 0,
                        "progress": False,
                    }
                    jobs.append(
                        {
                            "command": f"train {method}",
                            "name": name,
                            "args": [*map(str, data), *map(str, extra)],
                            "options": options,
                        }
                    )
        table_folder = args.out / "runs-batch"
        run_batch(write_spec(args.out / "runs.toml", table_folder, args.cpus_per_job, jobs), args.num_cpus)
        for scene, seed, variant, run in runs:
            langfield("eval", run)
            metrics = json.loads((run / "metrics.json").read_text())
            summary = json.loads((run / "train_summary.json").read_text())
            row = {
                "scene": scene,
                "variant": variant,
                "seed": seed,
                "views": args.views,
                "steps": summary["steps"],
                "wall": job_seconds(table_folder, run.name),
                "psnr": metrics["psnr"],
                "ssim": metrics["ssim"],
            }
            with results.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row))
        for scene in args.scenes:
            for seed in args.seeds:
                if {"nerf", args.side_by_side} <= set(args.variants):
                    side_by_side(args.out, scene, seed, args.side_by_side, args.views)
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()] if results.is_file() else []
    print(table(rows))


if __name__ == "__main__":
    main()
