"""Configuration of ``clipnerf`` (torch-free: the CLI builds its options from it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Tuple

import tyro

from langfield.data.config import DataConfig
from langfield.fields.conditional import ConditionalFieldConfig
from langfield.train.config import TrainerConfig


@dataclass
class ClipNerfModelConfig:
    field: ConditionalFieldConfig = field(default_factory=ConditionalFieldConfig)
    """The conditional field (codes, deformation network, template or trunk); paper sizes in its help."""
    box: Tuple[float, float, float, float, float, float] = (-0.6, -0.6, -0.05, 0.6, 0.6, 1.0)
    """The category's objects live in this box (x0 y0 z0 x1 y1 z1; `langfield world category` objects stand on
    z = 0 at the origin)."""
    step_ratio: float = 0.5
    """Ray-marching step as a fraction of a template voxel."""
    code_std: float = 0.01
    """Initial spread of the per-object codes (auto-decoder: codes are learned with the field)."""
    code_weight: float = 1e-4
    """Weight of |z|² on the codes of a batch (DeepSDF's prior on latent codes: a compact code space to edit in)."""
    occupancy_resolution: int = 32
    """Cells per axis of the occupancy grid shared by the category (empty-space skipping for every object)."""
    occupancy_objects: int = 8
    """Objects whose density is sampled at each occupancy update (a running maximum keeps the union)."""
    occupancy_every: int = 16
    occupancy_threshold: float = 1e-3
    color_threshold: float = 1e-4
    """Colour is evaluated only for samples whose weight exceeds this."""
    random_background: bool = True
    """Composite images with alpha on a random colour per ray while training."""
    lr_grid: float = 0.1
    lr_networks: float = 2e-3
    lr_codes: float = 1e-2


@dataclass
class ClipNerfConfig:
    """Train `clipnerf` on a category dataset (`langfield world category chair --out DIR`): one conditional field
    for every object, with a learned shape code and appearance code per object (the auto-decoder regime)."""

    output: Path = Path("runs/clipnerf")
    data: Annotated[DataConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=DataConfig)
    trainer: Annotated[TrainerConfig, tyro.conf.OmitArgPrefixes] = field(
        default_factory=lambda: TrainerConfig(batch_rays=1024, max_steps=3000, eval_every=0)
    )
    model: ClipNerfModelConfig = field(default_factory=ClipNerfModelConfig)
