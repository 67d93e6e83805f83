"""Configuration of the `lerf` method (torch-free: it is also the CLI tree)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Optional, Tuple

import tyro

from langfield.checks import NON_NEGATIVE, UNIT, at_least, between, positive
from langfield.data.config import DataConfig
from langfield.methods.nerf.config import NerfModelConfig
from langfield.train.config import TrainerConfig

LERF_FRACTIONS = (0.05, 0.125, 0.2, 0.275, 0.35, 0.425, 0.5)  # LERF: 7 crop sizes, linspace(5 %, 50 %)
CANONICAL_PHRASES = ("object", "things", "stuff", "texture")


@dataclass
class LerfModelConfig(NerfModelConfig):
    """The `nerf` radiance field plus a language field: a grid of language features (its own, never touching
    density or colour), volume-rendered with the detached weights of the radiance field, then decoded together
    with the crop scale into the encoder's space (and into its dense features, the DINO head)."""

    resolution: Annotated[Optional[int], at_least(2)] = 160
    """Final lattice points per axis of the density and feature grids (lerf's localisation was measured at 160;
    unset: chosen from the pixel footprint as `nerf` does)."""
    sample_color_weight: Annotated[float, NON_NEGATIVE] = 0.05
    """Weight of the per-sample colour loss (lerf's localisation was measured with 0.05; `nerf` now uses 0.01)."""
    lr_density: Annotated[Optional[float], NON_NEGATIVE] = 0.1
    """Learning rate of the density grid (lerf's localisation was measured with 0.1; unset: `nerf`'s rule, 0.8 or
    1.6)."""
    lr_features: Annotated[Optional[float], NON_NEGATIVE] = 0.1
    """Learning rate of the feature grid (as the density grid's)."""
    encoder: str = "langfield-mini"
    """The vision-language encoder whose embeddings are distilled (langfield-mini, a CLIP folder or hub id)."""
    dense_encoder: str = ""
    """Encoder of the dense (DINO) targets; empty: the dense features of `encoder`. E.g. facebook/dinov2-small."""
    crop_fractions: Annotated[Tuple[float, ...], between(0, 1, lo_open=True, nonempty=True)] = LERF_FRACTIONS
    """Crop sides of the supervision pyramid, as fractions of the image height (one level each)."""
    crop_stride: Annotated[float, positive()] = 0.5
    """Distance between neighbouring crop centres, as a fraction of the crop side (0.5: crops overlap by half)."""
    cache_dir: str = ""
    """Where pyramids are cached (default: $LANGFIELD_CACHE/lerf or ~/.cache/langfield/lerf); 'none' disables."""
    language_resolution: Annotated[int, at_least(2)] = 64
    """Lattice points per axis of the language feature grid."""
    language_channels: Annotated[int, at_least(1)] = 16
    language_hidden: Annotated[int, at_least(1)] = 128
    """Width of the language decoder (2 hidden layers)."""
    dino_hidden: Annotated[int, at_least(1)] = 64
    clip_weight: Annotated[float, NON_NEGATIVE] = 1.0
    """Weight of the Huber loss (delta 1.25, as LERF) between the rendered embedding and the pyramid target."""
    dino_weight: Annotated[float, NON_NEGATIVE] = 0.1
    """Weight of the MSE between the DINO head and the dense features (0 disables the DINO head's loss)."""
    lr_language_grid: Annotated[float, NON_NEGATIVE] = 0.1
    lr_language_mlp: Annotated[float, NON_NEGATIVE] = 3e-3
    canonical_phrases: Tuple[str, ...] = CANONICAL_PHRASES
    """Negatives of the relevancy score (LERF's canonical phrases)."""
    query_fractions: Annotated[Tuple[float, ...], between(0, 1, lo_open=True, nonempty=True)] = (
        0.1,
        0.15,
        0.2,
        0.25,
        0.3,
    )
    """Crop scales (fractions of the image height) tried by a query; the one whose map peaks highest is kept
    (automatic scale selection). The 5 % crops are too small for the encoder to recognise an object and the largest
    mix several objects: on the development scene (seed 0) 10 %-30 % localised best (BENCHMARKS.md)."""
    query_smoothing: Annotated[float, NON_NEGATIVE] = 0.02
    """Gaussian blur of relevancy maps before the peak is taken, as a fraction of the image height (0: none)."""
    query_min_opacity: Annotated[float, UNIT] = 0.5
    """Pixels whose ray hits no surface (opacity below this) get relevancy 0: there is nothing there to name."""


@dataclass
class LerfConfig:
    """Train `lerf`: a radiance field with a language field distilled from multi-scale encoder crops."""

    output: Path = Path("runs/lerf")
    data: Annotated[DataConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=DataConfig)
    trainer: Annotated[TrainerConfig, tyro.conf.OmitArgPrefixes] = field(
        default_factory=lambda: TrainerConfig(batch_rays=1024)
    )
    model: LerfModelConfig = field(default_factory=LerfModelConfig)
