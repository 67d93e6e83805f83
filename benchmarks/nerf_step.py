"""Where a `nerf` training step spends its time: loads a run folder (its checkpoint, config and data), then times
training steps (ray batch, render, losses, backward, the finite check, Adam) and the per-step parts on their own,
with a torch.profiler table of the largest operators.

    .venv/bin/langfield train nerf --data ../shared/data/lego --output benchmarks/out/prof1000 --downscale 8 \
        --max-steps 1000 --seed 0
    .venv/bin/python benchmarks/nerf_step.py benchmarks/out/prof1000 --steps 50
    # empty space tested at every step (the code before) against block skipping, alternating in one process
    .venv/bin/python benchmarks/nerf_step.py benchmarks/out/prof1000 --compare-skip --steps 120
    # the feature grid's gradient dense (the code before) against row-sparse with lazy Adam, alternating
    .venv/bin/python benchmarks/nerf_step.py benchmarks/out/prof1000 --compare-sparse --steps 200
    # the grids' backward by index_add_ of weighted rows (the code before) against sort + embedding_bag, alternating
    .venv/bin/python benchmarks/nerf_step.py benchmarks/out/prof1000 --compare-backward --steps 200
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from langfield.data import load_dataset
from langfield.fields.grid import SPARSE_VALUES_PER_REFERENCE, _TrilinearGather
from langfield.resources import reuse_freed_memory
from langfield.run import load_run
from langfield.train.loop import all_finite
from langfield.train.trainer import RayBatches, build_optimizer


def setup(path: Path, **model_options):
    """The run's model (``model_options`` set on its config), its config and one training step (returns samples)."""
    run = load_run(path, device="cpu")
    model, config = run.model, run.config
    for key, value in model_options.items():
        setattr(model.config, key, value)
    dataset = load_dataset(config.data)
    batches = RayBatches(dataset, torch.device("cpu"), torch.Generator().manual_seed(0))
    optimizer = build_optimizer(model)
    model.train()
    rays = config.trainer.batch_rays

    def step() -> int:
        batch = batches.sample(rays, model.random_background)
        outputs = model.render_batch(batch)
        losses = model.loss(outputs, batch)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        if all_finite([p.grad for g in optimizer.param_groups for p in g["params"]]):  # as the trainer checks
            optimizer.step()
        return int(outputs["weights"].numel())

    return model, config, step


def dense_gradients(path: Path):
    """:func:`setup` with the feature grid's gradient dense (the code before row-sparse gradients)."""
    model, config, step = setup(path)
    model.field.feature_grid.sparse_grad = False
    return model, config, step


def index_add_backward(ctx, grad: torch.Tensor):
    """The trilinear gather's backward before :func:`~langfield.fields.grid.corner_sums`: the (N·8, C) weighted rows
    accumulated with ``index_add_`` (into the whole table, or into the touched rows found by ``torch.unique``)."""
    table, corners, weights = ctx.saved_tensors
    grad_table = grad_weights = None
    if ctx.needs_input_grad[0]:
        rows = (grad[:, None, :] * weights[..., None]).reshape(-1, grad.shape[-1])
        index = corners.reshape(-1)
        if ctx.sparse_grad and table.numel() >= SPARSE_VALUES_PER_REFERENCE * corners.numel():
            names, position = torch.unique(index, return_inverse=True)
            values = rows.new_zeros(len(names), rows.shape[1]).index_add_(0, position, rows)
            grad_table = torch.sparse_coo_tensor(
                names[None], values, table.shape, is_coalesced=True, check_invariants=False
            )
        else:
            grad_table = torch.zeros_like(table).index_add_(0, index, rows)
    if ctx.needs_input_grad[2]:
        grad_weights = (table[corners] * grad[:, None, :]).sum(dim=-1)
    return grad_table, None, grad_weights, None


def with_backward(backward, variant):
    """``variant`` (from :func:`setup`) whose steps run with ``backward`` as the trilinear gather's backward."""
    model, config, step = variant

    def patched() -> int:
        _TrilinearGather.backward = staticmethod(backward)  # pyright: ignore[reportAttributeAccessIssue]
        return step()

    return model, config, patched


def compare(variants: dict, steps: int, block: int = 20) -> None:
    """Blocks of ``block`` steps of each variant in turn (one process, so the machine's drift hits all alike)."""
    seconds = dict.fromkeys(variants, 0.0)
    samples = dict.fromkeys(variants, 0)
    for _, _, step in variants.values():
        for _ in range(5):
            step()
    for _ in range(max(1, steps // block)):
        for name, (_, _, step) in variants.items():
            start = time.perf_counter()
            for _ in range(block):
                samples[name] += step()
            seconds[name] += time.perf_counter() - start
    total = max(1, steps // block) * block
    for name in variants:
        print(f"{name}: {1000 * seconds[name] / total:.1f} ms/step, {samples[name] / seconds[name]:,.0f} samples/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument("--system-malloc", action="store_true", help="leave glibc's allocator as it is, as before")
    parser.add_argument("--compare-skip", action="store_true", help="every step tested vs block skipping, alternating")
    parser.add_argument(
        "--compare-sparse", action="store_true", help="dense vs row-sparse feature-grid gradients, alternating"
    )
    parser.add_argument(
        "--compare-backward", action="store_true", help="index_add_ vs sort + embedding_bag grid backward, alternating"
    )
    args = parser.parse_args()
    if not args.system_malloc:
        reuse_freed_memory()  # as the trainer does

    if args.compare_skip:
        compare({"every step tested": setup(args.run, skip_block=0), "block skipping": setup(args.run)}, args.steps)
        return
    if args.compare_backward:
        current = _TrilinearGather.backward
        variants = {
            "index_add_ of weighted rows": with_backward(index_add_backward, setup(args.run)),
            "sort + embedding_bag": with_backward(current, setup(args.run)),
        }
        compare(variants, args.steps)
        return
    if args.compare_sparse:
        variants = {"dense feature gradient": dense_gradients(args.run), "row-sparse": setup(args.run)}
        compare(variants, args.steps)
        return
    model, config, step = setup(args.run)
    rays = config.trainer.batch_rays
    generator = torch.Generator().manual_seed(0)

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
        if model.config.skip_block > 1:  # the block map is rebuilt after every update
            model.occupancy.coarse(model.config.skip_block)
    print(
        f"occupancy update and block map ({tuple(model.occupancy.shape)} cells): "
        f"{200 * (time.perf_counter() - start):.1f} ms"
    )

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
