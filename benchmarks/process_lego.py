"""Poses from lego's images alone (BENCHMARKS.md, "process: lego from images alone").

    .venv/bin/python benchmarks/process_lego.py --out benchmarks/out/process_lego [--steps 3000] [--size 400]

1. `langfield process images ../shared/data/lego/train --out OUT/processed` (poses withheld; matching at --size);
2. the recovered cameras against the true ones after a similarity alignment (rotation and centre errors);
3. `langfield train nerf` on the processed dataset and on the true poses, the same steps and seed at
   `--downscale 8`, then held-out PSNR (views i % 8 == 0): the processed run on its own (COLMAP) held-out cameras
   (`langfield eval`), and on the true held-out cameras mapped into its frame by the alignment of the training
   cameras only, with the true intrinsics.
Writes OUT/RESULTS.json. A finished stage is reused when the script runs again (delete OUT to start over).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LANGFIELD = [sys.executable, "-m", "langfield.cli.main"]


def run(args: list[str]) -> float:
    start = time.perf_counter()
    print("$ langfield", " ".join(args), flush=True)
    subprocess.run(LANGFIELD + args, check=True)
    return time.perf_counter() - start


def true_poses(lego: Path) -> tuple[dict[str, np.ndarray], float]:
    meta = json.loads((lego / "transforms_train.json").read_text())
    poses = {
        Path(f["file_path"]).name + ".png": np.array(f["transform_matrix"], dtype=np.float64) for f in meta["frames"]
    }
    return poses, float(meta["camera_angle_x"])


def aligned_holdout_psnr(run_dir: Path, processed: Path, lego: Path, downscale: int, true_focal: bool = True) -> float:
    """PSNR of the processed run on the true held-out cameras, mapped into its frame by the similarity that aligns
    the true training cameras to the recovered ones; with the true focal length, or (``true_focal=False``) with
    the one COLMAP recovered (what the field was trained with: the poses alone are then tested)."""
    import torch

    from langfield.apps.pose_accuracy import umeyama
    from langfield.cameras import Cameras
    from langfield.data import load_dataset
    from langfield.data.config import DataConfig
    from langfield.run import load_run
    from langfield.train.metrics import psnr

    truth, angle_x = true_poses(lego)
    data = load_dataset(DataConfig(data=processed, downscale=downscale))
    names = [Path(n).name for n in data.filenames]
    est = data.cameras.c2w.double().numpy()
    true = np.stack([truth[n][:3] for n in names])
    train = data.train_indices
    to_processed = umeyama(true[train, :3, 3], est[train, :3, 3])  # true world → processed (normalised) world
    test = data.test_indices
    c2w = torch.from_numpy(to_processed.poses(true[test])).float()
    n = len(test)
    full = lambda v: torch.full((n,), float(v))  # noqa: E731
    if true_focal:
        focal = 0.5 * data.width / math.tan(0.5 * angle_x)
        fx, fy, cx, cy = full(focal), full(focal), full(data.width / 2), full(data.height / 2)
    else:
        fx, fy, cx, cy = (getattr(data.cameras, k)[test] for k in ("fx", "fy", "cx", "cy"))
    cameras = Cameras(c2w, fx, fy, cx, cy, data.width, data.height)
    model = load_run(run_dir, "cpu").model
    scores = []
    for k, index in enumerate(test):
        with torch.no_grad():
            out = model.render_camera(cameras, k)
        scores.append(psnr(out["rgb"].cpu(), data.rgb(index)))
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/process_lego")
    parser.add_argument("--lego", type=Path, default=ROOT.parent / "shared/data/lego")
    parser.add_argument("--size", type=int, default=400, help="matching size (longest side)")
    parser.add_argument("--camera-model", default="PINHOLE")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--downscale", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from langfield.apps.pose_accuracy import pose_errors

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    processed = out / "processed"
    results: dict = {"matching_size": args.size, "camera_model": args.camera_model, "steps": args.steps}
    if not (processed / "transforms.json").is_file():
        seconds = run(
            ["process", "images", str(args.lego / "train"), "--out", str(processed), "--sfm.matching-size",
             str(args.size), "--sfm.camera-model", args.camera_model, "--sfm.seed", str(args.seed)]
        )  # fmt: skip
        results["process_wall_seconds"] = round(seconds, 1)
    report = json.loads((processed / "process_report.json").read_text())
    results["process_report"] = report
    truth, _ = true_poses(args.lego)
    frames = json.loads((processed / "transforms.json").read_text())["frames"]
    names = [Path(f["file_path"]).name for f in frames]
    errors = pose_errors(
        np.stack([np.array(f["transform_matrix"]) for f in frames]), np.stack([truth[n] for n in names])
    )
    errors.pop("alignment")
    results["pose_errors"] = errors
    print(json.dumps(errors, indent=1), flush=True)
    common = [
        "--downscale",
        str(args.downscale),
        "--max-steps",
        str(args.steps),
        "--seed",
        str(args.seed),
        "--no-progress",
    ]
    for label, data in (("true_poses", args.lego), ("processed", processed)):
        run_dir = out / f"nerf_{label}"
        if not (run_dir / "metrics.json").is_file():
            results[f"{label}_train_seconds"] = round(
                run(["train", "nerf", "--data", str(data), "--output", str(run_dir), *common]), 1
            )
            run(["eval", str(run_dir)])
        results[f"{label}_psnr"] = json.loads((run_dir / "metrics.json").read_text())["psnr"]
        results[f"{label}_summary"] = json.loads((run_dir / "train_summary.json").read_text())
    results["processed_psnr_on_true_poses_recovered_focal"] = aligned_holdout_psnr(
        out / "nerf_processed", processed, args.lego, args.downscale, true_focal=False
    )
    results["processed_psnr_on_true_cameras"] = aligned_holdout_psnr(
        out / "nerf_processed", processed, args.lego, args.downscale
    )
    results["psnr_gap_db"] = results["true_poses_psnr"] - results["processed_psnr"]
    (out / "RESULTS.json").write_text(json.dumps(results, indent=1))
    print(json.dumps({k: v for k, v in results.items() if not isinstance(v, dict)}, indent=1))


if __name__ == "__main__":
    main()
