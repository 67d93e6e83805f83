"""A video through the whole path (BENCHMARKS.md, "process: a video"): an orbit of a textured procedural scene
rendered by the world renderer as MP4 → `langfield process video` → `langfield train nerf` → held-out PSNR.

    .venv/bin/python benchmarks/process_video.py --out benchmarks/out/process_video [--frames 60] [--steps 3000]

The recovered cameras are also compared with the true ones of the frames kept (similarity alignment). Writes
OUT/RESULTS.json; a finished stage is reused when the script runs again.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from process_lego import ROOT, run  # the same subprocess runner (this folder is on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/process_video")
    parser.add_argument("--video-frames", type=int, default=96)
    parser.add_argument("--resolution", type=int, default=192)
    parser.add_argument("--frames", type=int, default=48, help="frames kept by process video")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--camera-model", default="PINHOLE", help="the renderer's camera has no distortion")
    parser.add_argument(
        "--self-calibrate",
        dest="known_focal",
        action="store_false",
        help="estimate the focal length (on this one-elevation orbit it comes out at half the truth)",
    )
    args = parser.parse_args()
    from langfield.apps.pose_accuracy import pose_errors

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    video, data, run_dir = out / "orbit.mp4", out / "data", out / "nerf"
    results: dict = vars(args) | {"out": str(out)}
    if not video.is_file():
        results["render_seconds"] = run(
            ["world", "video", "--out", str(video), "--seed", str(args.seed), "--frames", str(args.video_frames),
             "--resolution", str(args.resolution), "--elevation", "35", "--supersample", "1"]
        )  # fmt: skip
    camera = json.loads(video.with_suffix(".cameras.json").read_text()) if video.is_file() else {}
    focal = 0.5 * args.resolution / math.tan(0.5 * camera.get("camera_angle_x", 0.6911112070083618))
    results["focal_length_given"] = focal if args.known_focal else None
    if not (data / "transforms.json").is_file():
        command = ["process", "video", str(video), "--out", str(data), "--frames", str(args.frames)]
        command += ["--sfm.camera-model", args.camera_model]
        if args.known_focal:
            command += ["--sfm.focal-length", f"{focal:.6f}"]
        results["process_wall_seconds"] = run(command)
    report = json.loads((data / "process_report.json").read_text())
    results["process_report"] = report
    truth = json.loads(video.with_suffix(".cameras.json").read_text())["transform_matrix"]
    frames = json.loads((data / "transforms.json").read_text())["frames"]
    source = [report["frame_indices"][int(Path(f["file_path"]).stem.split("_")[1]) - 1] for f in frames]
    errors = pose_errors(
        np.stack([np.array(f["transform_matrix"]) for f in frames]), np.stack([np.array(truth[i]) for i in source])
    )
    errors.pop("alignment")
    results["pose_errors"] = errors
    if not (run_dir / "metrics.json").is_file():
        results["train_seconds"] = run(
            ["train", "nerf", "--data", str(data), "--output", str(run_dir), "--max-steps", str(args.steps),
             "--seed", str(args.seed), "--no-progress"]
        )  # fmt: skip
        run(["eval", str(run_dir), "--save-images"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    results["heldout_psnr"], results["heldout_views"] = metrics["psnr"], metrics["num_views"]
    results["train_summary"] = json.loads((run_dir / "train_summary.json").read_text())
    (out / "RESULTS.json").write_text(json.dumps(results, indent=1))
    print(json.dumps({k: v for k, v in results.items() if not isinstance(v, dict)}, indent=1))
    print(json.dumps(errors, indent=1))


if __name__ == "__main__":
    main()
