"""Ctrl-C at step boundaries, so that the state a training loop saves on interruption is never half a step, and
:func:`checkpointed_steps`, the periodic / final / on-Ctrl-C saving of the training scripts built on it.

Inside ``with step_boundaries() as boundary:`` the first SIGINT only sets a flag; the loop calls
``boundary.check()`` after each completed step, which raises KeyboardInterrupt there, and the loop's handler saves
a consistent state (weights, optimiser, random generator and step counter all of the same step). A second Ctrl-C
interrupts at once. Outside the main thread (where signal handlers cannot be set) Ctrl-C behaves as usual.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator


class StepBoundary:
    def __init__(self) -> None:
        self.requested = False

    def _on_sigint(self, signum, frame) -> None:
        if self.requested:  # pressed twice: stop now
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Raise KeyboardInterrupt if Ctrl-C was pressed during the step that just ended."""
        if self.requested:
            raise KeyboardInterrupt


@contextmanager
def step_boundaries() -> Iterator[StepBoundary]:
    boundary = StepBoundary()
    if threading.current_thread() is not threading.main_thread():
        yield boundary
        return
    previous = signal.signal(signal.SIGINT, boundary._on_sigint)
    try:
        yield boundary
    finally:
        signal.signal(signal.SIGINT, previous)


class CheckpointedSteps:
    """Handed out by :func:`checkpointed_steps`: call :meth:`step_done` at the end of every step."""

    def __init__(self, save: Callable[[], None], every_seconds: float, boundary: StepBoundary):
        self.save, self.every_seconds, self.boundary = save, every_seconds, boundary
        self.last_save = time.time()

    def step_done(self) -> None:
        """Save if ``every_seconds`` passed since the last save; stop here if Ctrl-C was pressed during the step."""
        if time.time() - self.last_save >= self.every_seconds:
            self.save()
            self.last_save = time.time()
        self.boundary.check()


@contextmanager
def checkpointed_steps(save: Callable[[], None], every_seconds: float, on_interrupt: Callable[[], None]) -> Iterator[CheckpointedSteps]:
    """A training loop's checkpoints: ``save`` every ``every_seconds`` (at a step boundary), at the end, and on
    Ctrl-C (at the end of the step it came in, then ``on_interrupt`` reports it and KeyboardInterrupt goes on)."""
    with step_boundaries() as boundary:
        try:
            yield CheckpointedSteps(save, every_seconds, boundary)
        except KeyboardInterrupt:
            save()
            on_interrupt()
            raise
    save()
