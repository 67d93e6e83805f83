"""Ctrl-C at step boundaries, so that the state a training loop saves on interruption is never half a step.

Inside ``with step_boundaries() as boundary:`` the first SIGINT only sets a flag; the loop calls
``boundary.check()`` after each completed step, which raises KeyboardInterrupt there, and the loop's handler saves
a consistent state (weights, optimiser, random generator and step counter all of the same step). A second Ctrl-C
interrupts at once. Outside the main thread (where signal handlers cannot be set) Ctrl-C behaves as usual.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


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
