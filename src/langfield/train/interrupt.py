"""Ctrl-C and SIGTERM at step boundaries, so that the state a training loop saves on interruption is never half a
step, and :func:`checkpointed_steps`, the periodic / final / on-interrupt saving of the training scripts built on it.

Inside ``with step_boundaries() as boundary:`` the first SIGINT or SIGTERM only sets a flag; the loop calls
``boundary.check()`` after each completed step, which raises :class:`Interrupted` there, and the loop's handler
saves a consistent state (weights, optimiser, random generator and step counter all of the same step). A second
signal stops at once with :class:`Aborted`, which handlers must not save on: the step it cut is half done, so the
last checkpoint is kept as it is. Outside the main thread (where signal handlers cannot be set) signals behave as
usual.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Stopped at a step boundary by a signal (``signum``): save, then exit with 128 + signum."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Aborted(Interrupted):
    """A second signal during a step: stop now, without saving the half-done step."""


class StepBoundary:
    def __init__(self) -> None:
        self.requested: int | None = None

    def _on_signal(self, signum, frame) -> None:
        if self.requested is not None:  # twice: stop now
            raise Aborted(signum)
        self.requested = signum

    def check(self) -> None:
        """Raise :class:`Interrupted` if a signal came during the step that just ended."""
        if self.requested is not None:
            raise Interrupted(self.requested)


@contextmanager
def step_boundaries() -> Iterator[StepBoundary]:
    boundary = StepBoundary()
    if threading.current_thread() is not threading.main_thread():
        yield boundary
        return
    previous = {s: signal.signal(s, boundary._on_signal) for s in SIGNALS}
    try:
        yield boundary
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def saves_on(exc: BaseException) -> bool:
    """Whether a training loop interrupted by ``exc`` holds a whole step it may save (not after :class:`Aborted`)."""
    return isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Aborted)


class CheckpointedSteps:
    """Handed out by :func:`checkpointed_steps`: call :meth:`step_done` at the end of every step."""

    def __init__(self, save: Callable[[], None], every_seconds: float, boundary: StepBoundary):
        self.save, self.every_seconds, self.boundary = save, every_seconds, boundary
        self.last_save = time.time()

    def step_done(self) -> None:
        """Save if ``every_seconds`` passed since the last save; stop here if a signal came during the step."""
        if time.time() - self.last_save >= self.every_seconds:
            self.save()
            self.last_save = time.time()
        self.boundary.check()


@contextmanager
def checkpointed_steps(
    save: Callable[[], None], every_seconds: float, on_interrupt: Callable[[], None]
) -> Iterator[CheckpointedSteps]:
    """A training loop's checkpoints: ``save`` every ``every_seconds`` (at a step boundary), at the end, and on
    Ctrl-C / SIGTERM (at the end of the step it came in, then ``on_interrupt`` reports it and the interrupt goes
    on; a second signal stops without saving)."""
    with step_boundaries() as boundary:
        try:
            yield CheckpointedSteps(save, every_seconds, boundary)
        except KeyboardInterrupt as exc:
            if saves_on(exc):
                save()
                on_interrupt()
            raise
    save()
