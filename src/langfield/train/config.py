"""Options of the training loop (torch-free, so the CLI can build it before loading torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class TrainerConfig:
    max_steps: int = 30000
    """Stop after this many optimisation steps."""
    max_seconds: Optional[float] = None
    """Stop after this much wall-clock training time; the learning-rate schedule then follows elapsed time."""
    seed: int = 0
    """Seed of every random choice (initialisation, ray batches, jitter)."""
    batch_rays: int = 4096
    """Rays per optimisation step."""
    lr_final_ratio: float = 0.1
    """Learning rates decay exponentially to this fraction of their initial value over the run."""
    eval_every: int = 500
    """Render one held-out view and report its PSNR every N steps (0: never)."""
    checkpoint_every: int = 1000
    """Write an atomic checkpoint every N steps (and at the end, and on Ctrl-C)."""
    checkpoint_seconds: float = 60.0
    """Also write a checkpoint when this many seconds have passed since the last one."""
    resume: bool = False
    """Continue the run in --output from its checkpoint."""
    device: str = "auto"
    """`auto` (CUDA when available), `cpu`, `cuda`, `cuda:1`, ..."""
    threads: Optional[int] = None
    """CPU threads for torch (default: torch's choice)."""
    progress: bool = True
    """Show a progress bar."""
