"""Where a `nerf` training step spends its time: loads a run folder (its checkpoint, config and data), then times
training steps (ray batch, render, losses, backward, Adam) and the per-step parts on their own, with a torch.profiler
table of the largest operators.

    .venv/bin/langfield train nerf --data ../shared/data/lego --output benchmarks/out/prof1000 --downscale 8 \
        --max-steps 1000 --seed 0
    .venv/bin/python benchmarks/nerf_step.py benchmarks/out/prof1000 --steps 50
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from langfield.data import load_dataset
from langfield.resources import reuse_freed_memory
from langfield.run import load_run
from langfield.train.trainer import RayBatches, build_optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--system-malloc", action="store_true", help="leave glibc's allocator as it is, as before")
    args = parser.parse_args()
    if not args.system_malloc:
        reuse_freed_memory()  # as the trainer does

    run = load_run(args.run, device="cpu")
    model, config = run.model, run.config
    dataset = load_dataset(config.data)
    generator = torch.Generator().manual_seed(0)
    batches = RayBatches(dataset, torch.device("cpu"), generator)
    optimizer = build_optimizer(model)
    model.train()
    rays = config.trainer.batch_rays

    def step() -> int:
        batch = batches.sample(rays, model.random_background)
        outputs = model.render_batch(batch)
        losses = model.loss(outputs, batch)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimizer.step()
        return int(outputs["weights"].numel())

    for _ in range(5):
        step()
    samples, start = 0, time.perf_counter()
    for _ in range(args.steps):
        samples += step()
    seconds = time.perf_counter() - start
    print(
        f"{args.steps} steps of {rays} rays: {1000 * seconds / args.steps:.1f} ms/step, "
        f"{samples / args.steps / rays:.1f} samples/ray, {samples / seconds:,.0f} samples/s"
    )
    start = time.perf_counter()
    for _ in range(5):
        model.update_occupancy(generator)
    print(f"occupancy update ({model.config.occupancy_resolution}^3): {200 * (time.perf_counter() - start):.1f} ms")

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
