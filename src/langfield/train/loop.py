"""The one training loop: everything that trains (radiance fields, the embedded prior, langfield-mini, the clipnerf
mappers) runs its steps here.

The loop owns what every training shares: threads and seeding, resuming from a checkpoint (the task's state, the
step, the elapsed time and every random generator), the stop on steps or seconds, the check that the loss and the
gradients are finite before each optimiser step (a step that is not is skipped and counted; too many in a row stop
training), gradient clipping, the progress bar, periodic and final atomic checkpoints and Ctrl-C / SIGTERM at a step
boundary. A :class:`Task` contributes its optimiser, its losses and small hooks around the step.
"""

from __future__ import annotations

import contextlib
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager, Sequence

import torch

from langfield.errors import LangfieldError, one_line
from langfield.train.checkpoint import load_checkpoint, save_checkpoint
from langfield.train.distributed import ProcessGroup, derived_seed
from langfield.train.interrupt import Interrupted, saves_on, step_boundaries
from langfield.ui import progress_bar


def all_finite(tensors: Sequence[torch.Tensor | None]) -> bool:
    """Whether every value of ``tensors`` is finite: one fused norm per tensor (a NaN or inf makes its norm
    non-finite) and one synchronisation, cheaper than an element-wise test. Of a sparse tensor, its stored values."""
    present = [t.detach() for t in tensors if t is not None and (t.is_floating_point() or t.is_complex())]
    values = [t._values() if t.is_sparse else t for t in present]
    if not values:
        return True
    norms = torch._foreach_norm(values)  # pyright: ignore[reportPrivateImportUsage]
    return bool(torch.isfinite(torch.stack(norms)).all())


def _tensors(tree: Any) -> list[torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, dict):
        return [t for value in tree.values() for t in _tensors(value)]
    if isinstance(tree, (list, tuple)):
        return [t for value in tree for t in _tensors(value)]
    return []


def _rng_state(generator: torch.Generator) -> dict:
    state: dict[str, Any] = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


@dataclass
class LoopSettings:
    name: str
    """Shown on the progress bar and saved in the checkpoint (a checkpoint of another name is refused)."""
    max_steps: int | None
    """Stop after this many steps (None: only ``max_seconds`` ends the loop)."""
    max_seconds: float | None = None
    """Also stop after this much training time; the progress that schedules follow is then the larger fraction."""
    seed: int = 0
    threads: int | None = None
    checkpoint: Path | None = None
    """Where the training state is saved (None: never saved, e.g. a short mapper training)."""
    checkpoint_every: int | None = None
    """Save every N steps (None: by time only)."""
    checkpoint_seconds: float = 60.0
    max_bad_steps: int = 10
    progress: bool = True
    metric: tuple[str, str] = ("loss", "")
    """(name, unit) of the value the bar shows (``Task.end_step``'s return value)."""
    restart_hint: str = "start afresh with --overwrite"
    """How to start afresh when a checkpoint does not fit (ends the error line)."""

    def __post_init__(self) -> None:
        if self.max_steps is None and self.max_seconds is None:
            raise ValueError("a training loop needs max_steps or max_seconds")


@dataclass
class LoopResult:
    step: int
    elapsed: float
    first_step: int  # where this session started (> 0 after a resume)
    first_elapsed: float
    skipped_steps: int

    @property
    def rate(self) -> float:
        """Steps per second of this session."""
        return max(self.step - self.first_step, 1) / max(self.elapsed - self.first_elapsed, 1e-9)


class Task:
    """What trains. Subclasses set ``optimizer`` and implement ``losses``; the other hooks are optional."""

    optimizer: torch.optim.Optimizer
    #: clip the gradients' global norm to this before each step (None: no clipping)
    max_grad_norm: float | None = None
    #: in data-parallel training, this rank's share of the step's batch: its gradients are weighted by it in the
    #: all-reduce (the ray-batch tasks set it from their rays; otherwise every rank weighs the same)
    share: float | None = None

    def start(self) -> None:
        """Once, after a resumed state is loaded and before the first step (precompute, open logs)."""

    def begin_step(self, step: int, progress: float, generator: torch.Generator) -> None:
        """Before the step's losses: schedules, per-step bookkeeping (may replace ``optimizer``)."""

    def losses(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Named terms for the log and ``total``, the loss the optimiser minimises."""
        raise NotImplementedError

    def after_update(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """After a successful optimiser step (EMA, schedulers, an adversary's own step); terms to log."""
        return {}

    def skipped(self, step: int, loss: torch.Tensor) -> None:
        """A step was skipped: its loss or a gradient was not finite."""

    def end_step(self, step: int, elapsed: float, losses: dict[str, torch.Tensor] | None) -> float:
        """After every step (``losses`` None when it was skipped): logging, evaluation. Returns the bar's value."""
        return float("nan")

    def state(self) -> dict:
        """What a checkpoint holds besides the loop's own entries; the weights go under ``model`` (checked finite
        before every save)."""
        return {}

    def load_state(self, payload: dict) -> None:
        """Load a checkpoint's :meth:`state` into the rebuilt task."""

    def interrupted(self, step: int, saved: bool) -> None:
        """Report an interrupt (``saved``: the step was saved)."""

    def close(self) -> None:
        """Always called at the end, also after an error (close logs)."""


class Observer:
    """Something that follows a training from beside the loop, e.g. the web viewer. Every step (with its evaluation
    and checkpoint) runs inside :meth:`hold`, so the observer can read the model between two steps from another
    thread; :meth:`stepped` follows each step. The trainer calls :meth:`attach` once the model is built and
    :meth:`finished` at the end. This base class does nothing."""

    def attach(self, output: Path, spec: Any, config: Any, model: Any, dataset: Any) -> None:
        """The run folder, the method, its config tree, the model and the dataset (None for text-to-3D)."""

    def hold(self) -> ContextManager[None]:
        return contextlib.nullcontext()

    def stepped(self, step: int, elapsed: float, value: float, metric: tuple[str, str]) -> None:
        """After every step: the steps done, the training seconds, the bar's value and its (name, unit), e.g.
        ("PSNR", " dB") for fields."""

    def finished(self) -> None:
        """Training ended (also after an interrupt or an error)."""


class TrainingLoop:
    """Set up with :class:`LoopSettings` (threads and seeds are set at once, before the task builds its model), then
    :meth:`run` a task.

    With a :class:`~langfield.train.distributed.ProcessGroup` (data-parallel training), the gradients are all-reduced
    before every optimiser step, only rank 0 saves checkpoints and shows progress, and two generators are handed to
    the task: :attr:`generator`, the same on every rank (for what must stay identical: the occupancy grid), to
    ``begin_step``; :attr:`rank_generator`, this rank's own (its rays, random poses), to ``losses`` and
    ``after_update``. Alone, both are the same generator."""

    def __init__(self, settings: LoopSettings, group: ProcessGroup | None = None):
        self.settings = settings
        self.group = group
        if settings.threads:
            torch.set_num_threads(settings.threads)
        torch.manual_seed(settings.seed)
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.rank_generator = self.generator
        if group is not None:
            self.rank_generator = torch.Generator().manual_seed(derived_seed(settings.seed, group.rank, 0))

    @property
    def main(self) -> bool:
        return self.group is None or self.group.main

    def _reseed_rank(self, step: int) -> None:
        """This rank's own streams, from (seed, rank, step): a resumed run on any number of ranks gets fresh ones."""
        if self.group is not None:
            self.rank_generator.manual_seed(derived_seed(self.settings.seed, self.group.rank, step))
            torch.manual_seed(derived_seed(self.settings.seed, self.group.rank, step) + 1)

    def saved_state(self) -> dict | None:
        """The checkpoint to resume from, read before the expensive set-up so that a bad one fails early."""
        s = self.settings
        if s.checkpoint is None:
            raise LangfieldError(f"{s.name}: nothing to resume (no checkpoint file)")
        return load_checkpoint(s.checkpoint, method=s.name)

    def progress(self, step: int, elapsed: float) -> float:
        s = self.settings
        fractions = [] if s.max_steps is None else [step / max(s.max_steps, 1)]
        if s.max_seconds is not None:
            fractions.append(elapsed / max(s.max_seconds, 1e-9))
        return min(1.0, max(fractions))

    def _save(self, task: Task, step: int, elapsed: float) -> None:
        s = self.settings
        if s.checkpoint is None:
            return
        state = task.state()
        if not all_finite(_tensors(state.get("model"))):
            raise LangfieldError(
                f"the parameters became non-finite by step {step}; the last good checkpoint is kept "
                "(lower the learning rates or check the data)"
            )
        if not self.main:  # the parameters are the same on every rank: rank 0 writes them
            return
        payload = {"method": s.name, "step": step, "elapsed": elapsed, **state, "rng": _rng_state(self.generator)}
        save_checkpoint(s.checkpoint, payload)

    def _restore(self, task: Task, payload: dict) -> tuple[int, float]:
        try:
            task.load_state(payload)
            rng = payload["rng"]
            self.generator.set_state(rng["generator"])
            torch.set_rng_state(rng["torch"])
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
            return int(payload["step"]), float(payload["elapsed"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            detail = one_line(exc)
            raise LangfieldError(
                f"{self.settings.checkpoint}: its training state does not fit this run ({detail}); "
                f"{self.settings.restart_hint}"
            ) from None

    def run(self, task: Task, resume: dict | None = None, observer: "Observer | None" = None) -> LoopResult:
        """Train ``task`` (from the checkpoint ``resume``, if given) until the steps or seconds are spent; each step
        runs inside ``observer.hold()``, and ``observer.stepped`` follows it."""
        s = self.settings
        hold = observer.hold if observer is not None else contextlib.nullcontext
        try:
            step, elapsed = self._restore(task, resume) if resume is not None else (0, 0.0)
            self._reseed_rank(step)
            task.start()
            first_step, first_elapsed = step, elapsed
            bad_steps = skipped_steps = 0
            last_checkpoint = time.perf_counter()
            started = time.perf_counter() - elapsed
            group, rank_generator = self.group, self.rank_generator
            bar_shown = s.progress and self.main
            with progress_bar(s.name, bar_shown, *s.metric) as bar, step_boundaries() as boundary:
                try:
                    while (s.max_steps is None or step < s.max_steps) and self.progress(step, elapsed) < 1.0:
                        with hold():  # an observer (the viewer) reads the model between steps, never in one
                            task.begin_step(step, self.progress(step, elapsed), self.generator)
                            losses = task.losses(step, rank_generator)
                            if "total" not in losses:
                                raise LangfieldError(f"{s.name} produced no loss at step {step}")
                            loss = losses["total"]
                            optimizer = task.optimizer
                            optimizer.zero_grad(set_to_none=True)
                            finite = bool(torch.isfinite(loss))
                            # no gradient: e.g. rays that all miss the occupied cells, nothing to learn
                            learns = finite and loss.requires_grad
                            if learns:
                                loss.backward()
                            parameters = [p for g in optimizer.param_groups for p in g["params"]]
                            stop, agreed_elapsed = False, None
                            if group is not None:  # every rank takes the same step, or skips it
                                share = task.share if task.share is not None else 1.0 / group.world
                                agreed = group.reduce_gradients(
                                    parameters,
                                    share,
                                    finite,
                                    boundary.requested is not None,
                                    time.perf_counter() - started,
                                )
                                finite, learns, stop = agreed.finite, agreed.finite and agreed.any_gradient, agreed.stop
                                agreed_elapsed = agreed.elapsed
                            if learns:
                                finite = all_finite([p.grad for p in parameters])
                                if finite:
                                    if task.max_grad_norm is not None:
                                        torch.nn.utils.clip_grad_norm_(parameters, task.max_grad_norm)
                                    optimizer.step()
                            if finite:
                                bad_steps = 0
                                losses = {**losses, **task.after_update(step, rank_generator)}
                            else:  # skip the step: the weights stay those of the last good one
                                optimizer.zero_grad(set_to_none=True)
                                bad_steps, skipped_steps = bad_steps + 1, skipped_steps + 1
                                task.skipped(step, loss)
                                if bad_steps >= s.max_bad_steps:
                                    raise LangfieldError(
                                        f"{bad_steps} steps in a row had a non-finite loss or gradient (last at step "
                                        f"{step}, "
                                        f"loss {float(loss.detach())}); the last good checkpoint is kept (lower the "
                                        "learning "
                                        "rates or check the data)"
                                    )
                            step += 1  # a skipped step still counts, so schedules and milestones move on as usual
                            # ranks follow one clock (schedules, --max-seconds): the mean of theirs at the all-reduce
                            elapsed = time.perf_counter() - started if agreed_elapsed is None else agreed_elapsed
                            value = task.end_step(step, elapsed, losses if finite else None)
                            bar.update(self.progress(step, elapsed), step, value)
                            every = s.checkpoint_every is not None and step % s.checkpoint_every == 0
                            if every or time.perf_counter() - last_checkpoint > s.checkpoint_seconds:
                                self._save(task, step, elapsed)
                                last_checkpoint = time.perf_counter()
                        if observer is not None:
                            observer.stepped(step, elapsed, value, s.metric)
                        if group is None:
                            boundary.check()
                        elif stop:  # agreed in the all-reduce: every rank stops after this same step
                            raise Interrupted(boundary.requested or signal.SIGTERM)
                except KeyboardInterrupt as exc:
                    saved = s.checkpoint is not None and saves_on(exc)  # a whole step: save it
                    if saved:
                        self._save(task, step, elapsed)
                    task.interrupted(step, saved)
                    raise
            self._save(task, step, elapsed)
            return LoopResult(step, elapsed, first_step, first_elapsed, skipped_steps)
        finally:
            task.close()
