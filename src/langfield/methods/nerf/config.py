from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Optional, Tuple

import tyro

from langfield.checks import NON_NEGATIVE, UNIT_OPEN, at_least, between, positive
from langfield.data.config import DataConfig
from langfield.train.config import TrainerConfig


@dataclass
class NerfModelConfig:
    resolution: Annotated[Optional[int], at_least(2)] = None
    """Final lattice points per axis of the density and feature grids. Unset: a voxel about as large as a training
    pixel's footprint at the scene centre, at most 160 and at least `initial_resolution` (the run's config.json
    records the number chosen; BENCHMARKS.md has the measurements)."""
    initial_resolution: Annotated[int, at_least(2)] = 64
    """Lattice points per axis at the start; grids grow to `resolution` at the `grow_at` milestones."""
    grow_at: Annotated[Tuple[int, ...], at_least(1, ordered=True)] = (800, 1800, 3000)
    """Steps at which the grids are upsampled (geometrically) towards `resolution`."""
    shrink_box: bool = True
    """At the first growth, shrink the scene box to the occupied region (DVGO's coarse-stage box)."""
    shrink_threshold: Annotated[float, between(0, 1, lo_open=True, hi_open=True)] = 1e-2
    """Cells whose step opacity exceeds this define the shrunk box (stricter than the occupancy threshold: stray
    low-density cells must not keep the box large)."""
    feature_dim: Annotated[int, at_least(1)] = 12
    """Channels of the feature grid read by the colour MLP."""
    hidden_dim: Annotated[int, at_least(1)] = 64
    """Width of the colour MLP."""
    hidden_layers: Annotated[int, at_least(1)] = 2
    """Hidden layers of the colour MLP."""
    view_frequencies: Annotated[int, NON_NEGATIVE] = 4
    """Frequencies of the view-direction encoding."""
    step_ratio: Annotated[float, positive()] = 0.5
    """Ray-marching step in units of the current voxel size."""
    initial_alpha: Annotated[float, between(0, 1, lo_open=True, hi_open=True)] = 1e-4
    """Opacity of one step in the initial (empty) grid."""
    occupancy_resolution: Annotated[int, at_least(2)] = 128
    """About this many occupancy cells (used to skip empty space) across the scene box: the cells follow the density
    lattice, each lattice cell split in equal parts until they are about this small."""
    occupancy_threshold: Annotated[float, UNIT_OPEN] = 1e-2
    """A cell is empty when the opacity of one step through it stays below this (nerfacc's default; chosen over 1e-3
    on a development split of lego's training views, BENCHMARKS.md)."""
    skip_block: Annotated[int, NON_NEGATIVE] = 4
    """Empty space is skipped in blocks of this many occupancy cells per axis (one test per block of steps, the
    same samples); 0 or 1 tests every step."""
    occupancy_every: Annotated[int, at_least(1)] = 16
    """Steps between occupancy-grid updates."""
    occupancy_warmup: Annotated[int, NON_NEGATIVE] = 16
    """Steps before the first occupancy update (all cells are sampled until then)."""
    color_threshold: Annotated[float, UNIT_OPEN] = 1e-4
    """Colour is evaluated only for samples whose weight exceeds this."""
    early_stop_transmittance: Annotated[float, UNIT_OPEN] = 1e-4
    """At evaluation, stop marching a ray once its transmittance falls below this."""
    render_bfloat16: bool = True
    """Renders without gradients (eval, render, viewer) evaluate the colour MLP in bfloat16 where the hardware is fast
    at it (CPUs with AVX-512 BF16 or AMX, CUDA); training stays float32."""
    random_background: bool = True
    """Composite images with alpha on a random colour per ray while training (disambiguates transparency)."""
    lr_density: Annotated[Optional[float], NON_NEGATIVE] = None
    """Adam's learning rate of the density grid. Unset: 0.8 where a voxel spans about one training pixel (lego at
    100×100), 1.6 where it spans two or more (the lattice capped below the pixels: lego at 400×400 and 800×800); the
    run's config.json records the rate chosen. DVGO's is 0.1 for 8,192-ray steps, and a step of 1,024 rays touches a
    voxel about 8 times less often; on a development split of lego, 12,000 steps: 0.1 / 0.4 / 0.8 / 1.6 gave 32.45 /
    33.42 / 33.29 / 33.11 dB at 100×100 and 27.41 / 28.96 / 29.45 / 29.67 dB at 400×400 (BENCHMARKS.md)."""
    lr_features: Annotated[Optional[float], NON_NEGATIVE] = None
    """Adam's learning rate of the feature grid (unset: the density grid's rule)."""
    lr_mlp: Annotated[float, NON_NEGATIVE] = 1e-3
    sample_color_weight: Annotated[float, NON_NEGATIVE] = 0.01
    """Weight of the per-sample colour loss (sum of w_i |c_i - target|^2; DVGO's `weight_rgbper`, its fine stage's
    0.01: +0.46 dB over 0.05 on a development split of lego, BENCHMARKS.md)."""
    distortion_weight: Annotated[float, NON_NEGATIVE] = 0.01
    """Weight of Mip-NeRF 360's distortion loss (compact weights along each ray: no floaters)."""
    tv_weight: Annotated[float, NON_NEGATIVE] = 1e-5
    """Total-variation weight on the density grid until the last growth."""


@dataclass
class NerfConfig:
    """Train the default `nerf` method: a fast grid radiance field for CPU."""

    output: Path = Path("runs/nerf")
    """Run folder: config, checkpoints, metrics and renders go here."""
    data: Annotated[DataConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=DataConfig)
    trainer: Annotated[TrainerConfig, tyro.conf.OmitArgPrefixes] = field(
        # many small steps beat few large ones for grids on CPU (measured: BENCHMARKS.md)
        default_factory=lambda: TrainerConfig(batch_rays=1024)
    )
    model: NerfModelConfig = field(default_factory=NerfModelConfig)
