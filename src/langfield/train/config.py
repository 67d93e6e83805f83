"""Options of the training loop (torch-free, so the CLI can build it before loading torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Optional

from langfield.checks import NON_NEGATIVE, SEED, at_least, between, positive

#: the step limit of a run given neither --max-steps nor --max-seconds
DEFAULT_STEPS = 30000


@dataclass
class TrainerConfig:
    max_steps: Annotated[Optional[int], at_least(1)] = None
    """Stop after this many optimisation steps; unset: 30,000, or no step limit when --max-seconds is given (the time
    budget alone ends the run)."""
    max_seconds: Annotated[Optional[float], positive()] = None
    """Stop after this much wall-clock training time; the learning-rate schedule then follows elapsed time."""
    seed: Annotated[int, SEED] = 0
    """Seed of every random choice (initialisation, ray batches, jitter)."""
    batch_rays: Annotated[int, at_least(1)] = 4096
    """Rays per optimisation step."""
    lr_final_ratio: Annotated[float, positive()] = 0.1
    """Learning rates decay exponentially to this fraction of their initial value over the run."""
    eval_every: Annotated[int, NON_NEGATIVE] = 500
    """Render one held-out view and report its PSNR every N steps (0: never)."""
    eval_pixels: Annotated[int, NON_NEGATIVE] = 40000
    """That periodic PSNR renders at most this many pixels of the view, the same randomly drawn ones each time (an
    unbiased estimate of the whole view's error that keeps an 800x800 view from costing seconds every time; 0: every
    pixel). `langfield eval` always renders whole views."""
    checkpoint_every: Annotated[int, at_least(1)] = 1000
    """Write an atomic checkpoint every N steps (and at the end, and on Ctrl-C)."""
    checkpoint_seconds: Annotated[float, positive()] = 60.0
    """Also write a checkpoint when this many seconds have passed since the last one."""
    resume: bool = False
    """Continue the run in --output from its checkpoint."""
    overwrite: bool = False
    """Start afresh in an --output that already holds a run or other files (the run's files are replaced)."""
    max_bad_steps: Annotated[int, at_least(1)] = 10
    """A step whose loss, gradients or parameters are not finite is skipped (and counted); after this many in a
    row training stops with an error, keeping the last good checkpoint."""
    device: str = "auto"
    """`auto` (CUDA when available), `cpu`, `cuda`, `cuda:1`, ..."""
    threads: Annotated[Optional[int], at_least(1)] = None
    """CPU threads for torch (default: torch's choice)."""
    progress: bool = True
    """Show a progress bar."""
    viewer: bool = False
    """Serve the web viewer (`langfield view`) of the run as it trains, and after it until Ctrl-C."""
    viewer_port: Annotated[int, between(1, 65535)] = 7007
    """The viewer's first port (the next free one is taken when it is in use)."""
    viewer_refresh: Annotated[float, between(0.1, 3600.0)] = 5.0
    """While training, how often (seconds) the viewer redraws a camera at rest to show progress; a moving camera is
    drawn at once. Each redraw costs the browser CPU too: on a laptop both come out of the training's time."""

    @property
    def step_limit(self) -> int | None:
        """The steps after which training stops: ``max_steps``, or 30,000 when neither it nor a time budget is set."""
        if self.max_steps is not None:
            return self.max_steps
        return None if self.max_seconds is not None else DEFAULT_STEPS
