"""Console output and progress bars (rich)."""

from __future__ import annotations

import contextlib
import sys

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

#: markup off: user text (prompts, queries, file names, labels) prints as it is, never read as rich markup; styled
#: words are built with :func:`styled`
console = Console(stderr=False, highlight=False, soft_wrap=True, markup=False)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Text from plain strings and (string, style) pairs, e.g.
    ``styled(("done", "bold green"), ": results in ", path)``."""
    return Text.assemble(*parts)


class _Bar:
    def __init__(self, progress: Progress | None, task):
        self.progress, self.task = progress, task

    def update(self, fraction: float, step: int, value: float) -> None:
        """``value``: the bar's live metric (PSNR unless the bar names another)."""
        if self.progress is not None:
            self.progress.update(self.task, completed=fraction * 100, step=step, psnr=value)

    def log(self, message: str) -> None:
        (self.progress.console if self.progress is not None else console).print(message)


@contextlib.contextmanager
def progress_bar(name: str, enabled: bool = True, metric: str = "PSNR", unit: str = " dB"):
    """A training bar with ETA and a live metric (PSNR by default); a no-op when disabled."""
    if not enabled:
        yield _Bar(None, None)
        return
    progress = Progress(
        TextColumn(f"[bold]{name}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("step {task.fields[step]}"),
        TextColumn(f"{metric} {{task.fields[psnr]:.{2 if unit else 4}f}}{unit}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=not sys.stdout.isatty(),
    )
    with progress:
        task = progress.add_task(name, total=100, step=0, psnr=float("nan"))
        yield _Bar(progress, task)


@contextlib.contextmanager
def task_bar(description: str, total: int, enabled: bool = True):
    """A simple counted progress bar with ETA (rendering, evaluation)."""
    if not enabled:
        yield lambda advance=1: None
        return
    progress = Progress(
        TextColumn(description),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=not sys.stdout.isatty(),
    )
    with progress:
        task = progress.add_task(description, total=total)
        yield lambda advance=1: progress.update(task, advance=advance)
