"""Configuration of the `dietnerf` method (torch-free: it is also the CLI tree)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Callable, Optional, Tuple

import tyro

from langfield.checks import FRACTION, NON_NEGATIVE, at_least, between, finite, positive
from langfield.data.config import DataConfig
from langfield.methods.nerf.config import NerfModelConfig
from langfield.train.config import TrainerConfig


@dataclass
class DietNerfModelConfig(NerfModelConfig):
    """The `nerf` radiance field plus DietNeRF's semantic-consistency loss (Jain et al., ICCV 2021): every
    `semantic_every` steps a whole low-resolution image is rendered from a random pose, embedded by the image
    encoder, and `semantic_weight` * (1 - cos) to the embedding of a random training view is added to the loss.

    The paper's settings: k = 10, lambda = 0.1, CLIP ViT-B/32 (`--model.encoder openai/clip-vit-base-patch32
    --model.semantic-weight 0.1 --model.semantic-resolution 168` where a user has CLIP), renders of 168x168
    upsampled to CLIP's 224, poses on the upper hemisphere at the radius of the training cameras. The defaults here
    are those, except lambda = 0.01 and 64x64 renders, for the embedded encoder, and the loss for the first half of
    training only (`semantic_until`, the paper's "ft" variant)."""

    encoder: str = "langfield-mini"
    """Image encoder of the semantic loss: langfield-mini (embedded), langfield-mini-random (control), a
    .safetensors file, or a CLIP folder / hub id (the paper: openai/clip-vit-base-patch32)."""
    semantic_every: Annotated[int, at_least(1)] = 10
    """k: steps between semantic-consistency losses (the paper: 10)."""
    semantic_weight: Annotated[float, NON_NEGATIVE] = 0.01
    """lambda: weight of 1 - cos(render, training view). The paper's 0.1 (for CLIP) over-regularises with the
    embedded encoder: on the development scene (1,500 steps) 0.1 lost 2.8 dB against `nerf`, 0.01 gained 0.85 dB,
    0.001 0.15 dB (BENCHMARKS.md). Use 0.1 with CLIP."""
    semantic_start: Annotated[int, NON_NEGATIVE] = 0
    """Steps before the first semantic loss (0: from the start, as the paper)."""
    semantic_until: Annotated[float, FRACTION] = 0.5
    """Fraction of training (of --max-steps, or of --max-seconds if that runs out first) after which the semantic
    loss is off, so that the rest fits the training views' colours alone: the paper's "DietNeRF, ft" variant. 1 keeps
    the loss to the end (the paper's plain DietNeRF). With the embedded encoder 0.5 beat `nerf` on lego at 8 views
    (+0.28 dB over 3 seeds, grid learning rates 0.1; +0.07 dB with today's 0.8 at 100×100) where 1 did not
    (BENCHMARKS.md)."""
    semantic_resolution: Annotated[int, at_least(8)] = 64
    """Height in pixels of the render from a random pose (width follows the training cameras' aspect). 64 is the
    embedded encoder's input; the paper renders 168 for CLIP's 224."""
    semantic_chunk: Annotated[int, at_least(1)] = 4096
    """Rays rendered at once for the semantic loss. A render of more rays is split into chunks whose activations are
    recomputed in the backward pass (gradient checkpointing), so memory stays bounded by one chunk."""
    azimuth_range: Annotated[Tuple[float, float], finite(ordered=True)] = (0.0, 360.0)
    """Azimuth of random poses, degrees about the up axis."""
    elevation_range: Annotated[Tuple[float, float], between(-90, 90, ordered=True)] = (0.0, 90.0)
    """Elevation of random poses, degrees above the horizontal plane (default: the upper hemisphere, uniform over
    its area)."""
    radius_range: Annotated[Optional[Tuple[float, float]], positive(ordered=True)] = None
    """Distance of random poses from the centre (default: from the nearest to the farthest training camera)."""
    center: Annotated[Optional[Tuple[float, float, float]], finite()] = None
    """Point random poses look at (default: the centre of the scene box)."""
    up: Annotated[Optional[Tuple[float, float, float]], finite()] = None
    """World up axis of random poses (default: the mean up vector of the training cameras)."""

    def check_relations(self, flag: Callable[[str], str]) -> None:
        """The rules between options (each option's own range is declared on its field); run by ``validate``."""
        from langfield.errors import LangfieldError

        if self.up is not None and not any(self.up):
            raise LangfieldError(f"{flag('up')} must be a non-zero vector, got {self.up}")


@dataclass
class DietNerfConfig:
    """Train `dietnerf`: `nerf` plus DietNeRF's semantic consistency, for few views (see --num-views)."""

    output: Path = Path("runs/dietnerf")
    data: Annotated[DataConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=DataConfig)
    trainer: Annotated[TrainerConfig, tyro.conf.OmitArgPrefixes] = field(
        default_factory=lambda: TrainerConfig(batch_rays=1024)
    )
    model: DietNerfModelConfig = field(default_factory=DietNerfModelConfig)
