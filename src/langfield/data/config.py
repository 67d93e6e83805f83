"""Options that say how a dataset is read (no heavy imports: the CLI builds this before loading torch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Optional, Tuple

from langfield.checks import NON_NEGATIVE, SEED, UNIT, at_least, positive


@dataclass
class DataConfig:
    data: Path = Path("data")
    """Dataset folder: Blender `transforms_{train,val,test}.json`, nerfstudio `transforms.json`, or LLFF
    `poses_bounds.npy` + `images/`."""
    format: Literal["auto", "blender", "nerfstudio", "llff"] = "auto"
    """Dataset format; `auto` detects it from the files present."""
    downscale: Annotated[int, at_least(1)] = 1
    """Divide the image size by this integer, with area (box) filtering."""
    background: Annotated[Tuple[float, float, float], UNIT] = (1.0, 1.0, 1.0)
    """Colour RGBA images are composited on (white, as in the NeRF synthetic benchmark)."""
    split: Literal["auto", "files", "holdout"] = "auto"
    """`files`: use split files; `holdout`: hold out every N-th view; `auto`: files where present, else holdout."""
    holdout_every: Annotated[int, NON_NEGATIVE] = 8
    """With holdout splits, views with index i % N == 0 are held out for evaluation (0: none held out)."""
    scene_scale: Annotated[float, positive()] = 1.0
    """Scale factor of the scene box (Blender: [-1.5, 1.5]^3 times this)."""
    max_views: Annotated[Optional[int], at_least(1)] = None
    """Read only the first N frames (quick experiments)."""
    num_views: Annotated[Optional[int], at_least(1)] = None
    """Few-shot training: train on N views chosen at random (by `view_seed`) among the non-held-out views; the
    held-out views stay the same."""
    view_ids: Optional[Tuple[str, ...]] = None
    """Few-shot training: train on exactly these views (frame indices, `--view-ids 2,15,30` or `--view-ids 2 15 30`;
    none held out)."""
    allow_outside: bool = False
    """Read frames whose `file_path` leads outside the dataset folder (`..`, absolute paths); refused by default."""
    view_seed: Annotated[int, SEED] = 0
    """Seed of the `num_views` choice (independent of the training seed, so runs compare like for like)."""
