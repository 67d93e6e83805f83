"""Fingerprints of every method's training, to show that a refactoring changed no behaviour.

``run DIR`` trains each method for a fixed number of steps with a fixed seed on a small analytic sphere scene (and a
two-object procedural category for clipnerf) through the command line; ``compare A B`` reports, per method, the
largest difference between the two runs' weights and their last logged losses. Identical code gives 0 everywhere;
a reordering of floating-point work gives differences near float32 rounding (1e-6 relative).

    .venv/bin/python benchmarks/fingerprints.py run /tmp/before     # on the old commit
    .venv/bin/python benchmarks/fingerprints.py run /tmp/after      # on the new one
    .venv/bin/python benchmarks/fingerprints.py compare /tmp/before /tmp/after
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

COMMON = ["--seed", "0", "--no-progress", "--eval-every", "0"]
GRID = ["--model.resolution", "32", "--model.initial-resolution", "24", "--model.grow-at", "30"]
CATEGORY = [
    "--category",
    "mug",
    "--objects",
    "2",
    "--views",
    "9",
    "--resolution",
    "16",
    "--model.field.shape-dim",
    "8",
    "--model.field.appearance-dim",
    "8",
]
METHODS = {
    "nerf": ["nerf", "--max-steps", "80", "--batch-rays", "512", *GRID],
    "vanilla-nerf": [
        "vanilla-nerf",
        "--max-steps",
        "20",
        "--batch-rays",
        "128",
        "--model.width",
        "32",
        "--model.coarse-samples",
        "16",
        "--model.fine-samples",
        "16",
    ],
    "lerf": [
        "lerf",
        "--max-steps",
        "60",
        "--batch-rays",
        "256",
        *GRID,
        "--model.language-resolution",
        "16",
        "--model.cache-dir",
        "none",
    ],
    "dietnerf": [
        "dietnerf",
        "--max-steps",
        "30",
        "--num-views",
        "4",
        "--model.semantic-every",
        "5",
        "--model.semantic-resolution",
        "24",
        *GRID,
    ],
    "clipnerf": ["clipnerf", "--max-steps", "20", "--batch-rays", "256", *CATEGORY],
    "clipnerf-adversarial": [
        "clipnerf",
        "--max-steps",
        "6",
        *CATEGORY,
        "--model.regime",
        "adversarial",
        "--model.adversarial.patch",
        "8",
        "--model.adversarial.images",
        "2",
    ],
    "dreamfusion": [
        "dreamfusion",
        "--max-steps",
        "10",
        "--model.prompt",
        "a red cube",
        "--model.render-resolution",
        "16",
        "--model.resolution",
        "24",
        "--model.batch-size",
        "1",
    ],
}
DATASET_FREE = ("clipnerf", "clipnerf-adversarial", "dreamfusion")


def run(out: Path) -> None:
    from helpers import write_blender

    out.mkdir(parents=True, exist_ok=True)
    scene = out / "sphere" if (out / "sphere").exists() else write_blender(out / "sphere", count=24, size=32)
    times = {}
    for name, args in METHODS.items():
        method, *options = args
        data = [] if name in DATASET_FREE else ["--data", str(scene)]
        started = time.perf_counter()
        command = [
            sys.executable,
            "-m",
            "langfield.cli.main",
            "train",
            method,
            *data,
            "--output",
            str(out / name),
            "--overwrite",
            *COMMON,
            *options,
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"{name}: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'failed'}")
        times[name] = round(time.perf_counter() - started, 1)
        _render(out / name)
        print(f"{name}: {times[name]} s", flush=True)
    (out / "times.json").write_text(json.dumps(times, indent=1))


def _render(folder: Path) -> None:
    """A held render of the run's first training view at half size (the evaluation path: no jitter, segments)."""
    from langfield.run import load_run

    run = load_run(folder, "cpu")
    if hasattr(run.model, "select"):
        run.model.select(0)
    rendered = run.model.render_camera(run.scene.cameras.scaled(0.5), 0)
    torch.save({k: v.contiguous() for k, v in rendered.items()}, folder / "render.pt")


def _last_losses(folder: Path) -> dict[str, float]:
    lines = [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
    last = [entry for entry in lines if "elapsed" in entry][-1]
    return {k: v for k, v in last.items() if isinstance(v, float) and k not in ("elapsed",)}


def compare(a: Path, b: Path) -> int:
    worst = 0.0
    for name in METHODS:
        sa = torch.load(a / name / "checkpoint.pt", weights_only=True)["model"]
        sb = torch.load(b / name / "checkpoint.pt", weights_only=True)["model"]
        if sorted(sa) != sorted(sb):
            print(f"{name}: different weights: {sorted(set(sa) ^ set(sb))}")
            worst = float("inf")
            continue
        diff = max((float((sa[k].double() - sb[k].double()).abs().max()) if sa[k].numel() else 0.0) for k in sa)
        scale = max(float(sa[k].double().abs().max()) if sa[k].numel() else 0.0 for k in sa)
        la, lb = _last_losses(a / name), _last_losses(b / name)
        loss = max(abs(la[k] - lb.get(k, float("nan"))) for k in la) if la else 0.0
        worst = max(worst, diff / max(scale, 1e-12))
        ra, rb = (torch.load(x / name / "render.pt", weights_only=True) for x in (a, b))
        render = max(float((ra[k] - rb[k]).abs().max()) for k in ("rgb", "opacity"))
        print(
            f"{name:22s} weights: max |diff| {diff:.3g} (largest weight {scale:.3g}); last logged losses: "
            f"max |diff| {loss:.3g}; render rgb/opacity: max |diff| {render:.3g}"
        )
    print(f"largest relative weight difference: {worst:.3g}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "run":
        run(Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit(__doc__)
