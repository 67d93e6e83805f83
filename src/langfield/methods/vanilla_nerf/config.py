from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro

from langfield.data.config import DataConfig
from langfield.train.config import TrainerConfig


@dataclass
class VanillaNerfModelConfig:
    depth: int = 8
    width: int = 256
    skip: int = 4
    position_frequencies: int = 10
    view_frequencies: int = 4
    coarse_samples: int = 64
    fine_samples: int = 128
    lr: float = 5e-4


@dataclass
class VanillaNerfConfig:
    """Train the original NeRF: positional encoding, 8x256 MLPs, coarse + fine with hierarchical sampling."""

    output: Path = Path("runs/vanilla-nerf")
    data: Annotated[DataConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=DataConfig)
    trainer: Annotated[TrainerConfig, tyro.conf.OmitArgPrefixes] = field(
        default_factory=lambda: TrainerConfig(batch_rays=1024, lr_final_ratio=0.1)
    )
    model: VanillaNerfModelConfig = field(default_factory=VanillaNerfModelConfig)
