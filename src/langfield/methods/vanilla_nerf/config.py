from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro

from langfield.checks import NON_NEGATIVE, at_least
from langfield.data.config import DataConfig
from langfield.train.config import TrainerConfig


@dataclass
class VanillaNerfModelConfig:
    depth: Annotated[int, at_least(1)] = 8
    width: Annotated[int, at_least(1)] = 256
    skip: Annotated[int, NON_NEGATIVE] = 4
    position_frequencies: Annotated[int, NON_NEGATIVE] = 10
    view_frequencies: Annotated[int, NON_NEGATIVE] = 4
    view_dependent: bool = True
    """Colour depends on the viewing direction (False: a Lambertian colour head)."""
    coarse_samples: Annotated[int, at_least(2)] = 64
    fine_samples: Annotated[int, NON_NEGATIVE] = 128
    """Samples of the fine network drawn from the coarse weights (0: no hierarchical sampling, coarse network only)."""
    lr: Annotated[float, NON_NEGATIVE] = 5e-4


@dataclass
class VanillaNerfConfig:
    """Train the original NeRF: positional encoding, 8x256 MLPs, coarse + fine with hierarchical sampling."""

    output: Path = Path("runs/vanilla-nerf")
    data: Annotated[DataConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=DataConfig)
    trainer: Annotated[TrainerConfig, tyro.conf.OmitArgPrefixes] = field(
        default_factory=lambda: TrainerConfig(batch_rays=1024, lr_final_ratio=0.1)
    )
    model: VanillaNerfModelConfig = field(default_factory=VanillaNerfModelConfig)


@dataclass
class SimplifiedNerfConfig(VanillaNerfConfig):
    """Train DietNeRF's "Simplified NeRF" baseline: the original NeRF made harder to overfit a few views — no
    hierarchical sampling (128 coarse samples only), 5 position frequencies instead of 10, no view dependence,
    learning rate 1e-5 (50x lower). Slow on CPU: an MLP method meant for comparisons on a GPU."""

    output: Path = Path("runs/simplified-nerf")
    model: VanillaNerfModelConfig = field(
        default_factory=lambda: VanillaNerfModelConfig(
            position_frequencies=5, view_dependent=False, coarse_samples=128, fine_samples=0, lr=1e-5
        )
    )
