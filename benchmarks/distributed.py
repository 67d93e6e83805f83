"""Data-parallel training of one run (BENCHMARKS.md, "Beyond one machine"): the same nerf training of lego at
--downscale 8 by one process and by `torchrun --nproc-per-node N` ranks, with the same total rays per step; the
held-out PSNR (views i % 8 == 0), wall clock, steps and field samples per second of each, side by side.

    .venv/bin/python benchmarks/distributed.py --out benchmarks/out/distributed --steps 1000

One process gets every core as torch threads; each of the N ranks gets cores / N (torchrun's OMP_NUM_THREADS).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def run(command: list[str], threads: int) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/lego"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/distributed"))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    langfield = [sys.executable, "-m", "langfield"]
    rows = []
    for ranks in args.ranks:
        output = args.out / f"ranks{ranks}"
        train = ["train", "nerf", "--data", str(args.data), "--downscale", "8", "--output", str(output)]
        train += ["--max-steps", str(args.steps), "--no-progress", "--overwrite"]
        if ranks == 1:
            wall = run([*langfield, *train], cores)
        else:
            launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)]
            wall = run([*launcher, "-m", "langfield", *train], max(1, cores // ranks))
        subprocess.run([*langfield, "eval", str(output)], check=True, capture_output=True)
        summary = json.loads((output / "train_summary.json").read_text())
        metrics = json.loads((output / "metrics.json").read_text())
        rows.append(
            {
                "ranks": ranks,
                "threads_per_rank": cores if ranks == 1 else max(1, cores // ranks),
                "wall_seconds": round(wall, 1),
                "train_seconds": summary["seconds"],
                "steps": summary["steps"],
                "samples_per_second": summary["samples_per_second"],
                "psnr": round(metrics["psnr"], 2),
                "identical_ranks": len(set(summary.get("rank_digests", ["-"]))) == 1,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    print("| ranks | threads each | wall s | train s | steps | samples/s | held-out PSNR | ranks identical |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |")
    for r in rows:
        print(
            f"| {r['ranks']} | {r['threads_per_rank']} | {r['wall_seconds']} | {r['train_seconds']} | {r['steps']} | "
            f"{r['samples_per_second']:,} | {r['psnr']:.2f} | {'yes' if r['identical_ranks'] else 'no'} |"
        )
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
