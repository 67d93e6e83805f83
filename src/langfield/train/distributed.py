"""Data-parallel training of one run over several processes (``torchrun --nproc-per-node N --no-python langfield
train ...``): gloo on CPU, nccl on CUDA.

Every rank holds the whole model and the dataset. The step's rays are split between the ranks (``--batch-rays`` is
the total, so a run trains the same way on any number of ranks); each rank draws its own from a generator of its own
rank, and after the backward pass the gradients are all-reduced, weighted by each rank's share of the rays — the
gradient of the loss over all the rays — so the optimiser steps are identical and the parameters stay equal on every
rank. This is what ``DistributedDataParallel`` does, done by the training loop itself because the grids are replaced
when they grow (a wrapper would have to be rebuilt) and a model renders through its own hooks, not ``forward``.

What must stay identical besides the parameters — the occupancy grid, the grid growth, the schedules — is driven
by the step counter and a generator shared by all ranks; the model's buffers are also re-broadcast from rank 0 every
:data:`BUFFER_SYNC_EVERY` steps. The same all-reduce carries the flags that every rank must agree on: a non-finite
loss on one rank skips the step on all, and a Ctrl-C / SIGTERM on any rank stops all of them after the same step.
Only rank 0 writes files and shows progress.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable, Mapping, Sequence

import torch
import torch.distributed as dist

from langfield.errors import LangfieldError, one_line

BUFFER_SYNC_EVERY = 50
"""Steps between broadcasts of the model's buffers (the occupancy grid) from rank 0."""

_joined = False


def joined_a_group() -> bool:
    """Whether this process has been a rank of a process group (see ``langfield.cli.main.leave``: such a process
    exits without Python's finalisation)."""
    return _joined


def world_size_from_environment() -> int:
    """The number of ranks torchrun started (1 outside torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise LangfieldError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number of processes") from None


@dataclass
class Agreement:
    """What the ranks agreed on after a step's all-reduce."""

    finite: bool
    """No rank had a non-finite loss."""
    stop: bool
    """Some rank received Ctrl-C / SIGTERM before the all-reduce: every rank stops after this step."""
    any_gradient: bool
    """Some rank's loss had a gradient (otherwise the optimiser does not step, as in one process)."""
    elapsed: float
    """The training seconds, the mean of the ranks' clocks: what schedules and a --max-seconds stop follow, so that
    every rank takes the same learning rate and stops after the same step."""


class ProcessGroup:
    """This process's place among the ranks of one training, and the collectives the training loop uses."""

    def __init__(self, rank: int, world: int, local_rank: int, device: torch.device):
        self.rank, self.world, self.local_rank, self.device = rank, world, local_rank, device
        self.broken = False
        """A collective failed: the group cannot be torn down cleanly (gloo aborts the process if it tries)."""

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes files and shows progress."""
        return self.rank == 0

    def share(self, total: int) -> int:
        """This rank's part of ``total`` items split as evenly as possible."""
        return total // self.world + (1 if self.rank < total % self.world else 0)

    # -- collectives -----------------------------------------------------------------------------------------
    def _collective(self, what: str, job):
        try:
            return job()
        except (RuntimeError, ValueError) as exc:  # gloo / nccl: a peer died or stopped answering
            detail = one_line(exc, 400)
            reason = "another rank stopped" if "closed by peer" in detail or "Connection reset" in detail else detail
            self.broken = True
            raise LangfieldError(
                f"rank {self.rank}: lost contact with the other ranks during {what} ({reason[:120]}); "
                "the last checkpoint is kept, continue with --resume"
            ) from None

    def broadcast_tensors(self, tensors: Iterable[torch.Tensor], what: str = "start-up") -> None:
        """Make ``tensors`` (in place) those of rank 0."""

        def job():
            with torch.no_grad():
                works = [dist.broadcast(t.data, src=0, async_op=True) for t in tensors]
                for work in works:
                    if work is not None:
                        work.wait()

        self._collective(what, job)

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank (as DDP does when it wraps a model)."""
        self.broadcast_tensors(list(module.parameters()) + list(module.buffers()))

    def reduce_gradients(
        self, parameters: Sequence[torch.Tensor], weight: float, finite: bool, stop: bool, elapsed: float = 0.0
    ) -> Agreement:
        """All-reduce the gradients of ``parameters``, each rank's scaled by ``weight`` (its share of the batch),
        together with what every rank must agree on (flags, the clock). A parameter without a gradient on every
        rank keeps none."""
        n = len(parameters)
        # per parameter: whether this rank has a gradient, and whether it is row-sparse (a grid's)
        flags = torch.zeros(4 + 2 * n, dtype=torch.float64, device=self.device)
        flags[0] = 0.0 if finite else 1.0
        flags[1] = 1.0 if stop else 0.0
        flags[3] = elapsed / self.world
        grads = []
        for i, p in enumerate(parameters):
            if p.grad is None or not finite:
                p.grad = torch.zeros_like(p)
            else:
                flags[4 + i] = 1.0
                if p.grad.is_sparse:  # reduced dense, then sparse again below
                    flags[4 + n + i] = 1.0
                    p.grad = p.grad.to_dense()
                p.grad.mul_(weight)
            grads.append(p.grad)
        flags[2] = float(flags[4 : 4 + n].sum() > 0)

        def job():
            works = [dist.all_reduce(g, async_op=True) for g in [flags, *grads]]
            for work in works:
                if work is not None:
                    work.wait()

        self._collective("the gradient all-reduce", job)
        values = flags.cpu()
        has_grad, sparse = (values[4 : 4 + n] > 0).tolist(), (values[4 + n :] > 0).tolist()
        for p, has, rows in zip(parameters, has_grad, sparse):
            if not has:
                p.grad = None
            elif rows and p.grad is not None:  # sparse on some rank: on every rank the rows with a gradient
                p.grad = p.grad.to_sparse(sparse_dim=1)
        return Agreement(
            finite=bool(values[0] == 0),
            stop=bool(values[1] > 0),
            any_gradient=bool(values[2] > 0),
            elapsed=float(values[3]),
        )

    def sum(self, value: float) -> float:
        """``value`` summed over the ranks."""
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        self._collective("the summary", lambda: dist.all_reduce(tensor))
        return float(tensor.item())

    def gather(self, value: str) -> list[str]:
        """Every rank's ``value``, in rank order."""
        values: list = [None] * self.world
        self._collective("the summary", lambda: dist.all_gather_object(values, value))
        return [str(v) for v in values]

    def barrier(self, what: str) -> None:
        self._collective(what, lambda: dist.barrier())

    def close(self, clean: bool) -> None:
        """Leave the group; ``clean``: after a training that ended well, wait for every rank first (a rank that
        tears its connections down while another still reads them makes that one abort)."""
        if not dist.is_initialized() or self.broken:
            return
        if clean:
            try:
                self.barrier("the end")
            except LangfieldError:  # the run is saved; a rank that already left changes nothing
                pass
        dist.destroy_process_group()


def state_digest(state: torch.nn.Module | Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (its first 16 hex digits) of every parameter and buffer of a module or a state dict, bit for bit:
    equal on all ranks when they trained in step, and equal to that of the weights rank 0 saved."""
    digest = hashlib.sha256()
    items = state.state_dict() if isinstance(state, torch.nn.Module) else state
    for name, tensor in items.items():
        digest.update(name.encode())
        data = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()[:16]


def join_from_environment(device: torch.device) -> tuple[ProcessGroup | None, torch.device]:
    """Join the process group that torchrun describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR / MASTER_PORT), or None when this process trains alone. On CUDA each rank takes the GPU of its
    local rank; the backend is nccl there and gloo on CPU."""
    world = world_size_from_environment()
    if world <= 1:
        return None, device
    try:
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise LangfieldError(
            f"WORLD_SIZE={world} but no valid RANK / LOCAL_RANK in the environment: start the ranks with torchrun"
        ) from None
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise LangfieldError(
                f"rank {rank}: local rank {local_rank} but only {torch.cuda.device_count()} GPU(s) on this node "
                "(use --nproc-per-node <= the GPUs per node)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        dist.init_process_group(backend, timeout=timedelta(minutes=30))
    except (RuntimeError, ValueError) as exc:
        raise LangfieldError(f"rank {rank}: could not join the other ranks ({one_line(exc, 120)})") from None
    global _joined
    _joined = True
    return ProcessGroup(rank, world, local_rank, device), device


def derived_seed(seed: int, rank: int, step: int) -> int:
    """A seed of this rank's own random stream (ray batches, jitter), re-derived at each (re)start so that a run
    resumed on a different number of ranks still gives every rank a stream of its own."""
    return (seed * 1_000_003 + (rank + 1) * 7_919 + step * 104_729) % (2**63 - 1)
