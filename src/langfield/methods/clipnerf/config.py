"""Configuration of ``clipnerf`` (torch-free: the CLI builds its options from it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Callable, Literal, Optional, Tuple

import tyro

from langfield.checks import FRACTION, NON_NEGATIVE, UNIT_OPEN, at_least, finite, positive
from langfield.data.config import DataConfig
from langfield.errors import LangfieldError
from langfield.fields.conditional import ConditionalFieldConfig
from langfield.train.config import TrainerConfig


@dataclass
class AdversarialConfig:
    """GRAF-style training (`--model.regime adversarial`): random codes and views, patches, a patch discriminator."""

    patch: Annotated[int, at_least(2)] = 16
    """Patches are K×K rays (GRAF: 32)."""
    min_scale: Annotated[float, FRACTION] = 0.25
    """Smallest fraction of the image a patch spans (1: always the whole image, downsampled)."""
    images: Annotated[int, at_least(1)] = 8
    """Fake and real patches per step."""
    r1_weight: Annotated[float, NON_NEGATIVE] = 10.0
    """γ of the R1 penalty on real patches."""
    lr_discriminator: Annotated[float, NON_NEGATIVE] = 2e-4
    discriminator_width: Annotated[int, at_least(1)] = 64
    code_std: Annotated[float, positive()] = 1.0
    """Codes are drawn from N(0, code_std²)."""
    bank: Annotated[int, at_least(1)] = 16
    """Fixed code samples that `render`, `export` and `select` show (the run's "objects")."""


@dataclass
class ClipNerfModelConfig:
    regime: Literal["autodecoder", "adversarial"] = "autodecoder"
    """autodecoder: a learned code per object, fitted to posed views (fast); adversarial: GRAF — random codes and views
    judged by a patch discriminator against the real images (the paper's regime; no object indices or poses needed)."""
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    field: ConditionalFieldConfig = field(default_factory=ConditionalFieldConfig)
    """The conditional field (codes, deformation network, template or trunk); paper sizes in its help."""
    box: Annotated[Tuple[float, float, float, float, float, float], finite()] = (-0.6, -0.6, -0.05, 0.6, 0.6, 1.0)
    """The category's objects live in this box (x0 y0 z0 x1 y1 z1; `langfield world category` objects stand on
    z = 0 at the origin)."""
    step_ratio: Annotated[float, positive()] = 0.5
    """Ray-marching step as a fraction of a template voxel."""
    code_std: Annotated[float, NON_NEGATIVE] = 0.01
    """Initial spread of the per-object codes (auto-decoder: codes are learned with the field)."""
    code_weight: Annotated[float, NON_NEGATIVE] = 1e-4
    """Weight of |z|² on the codes of a batch (DeepSDF's prior on latent codes: a compact code space to edit in)."""
    occupancy_resolution: Annotated[int, at_least(2)] = 32
    """Cells per axis of the occupancy grid shared by the category (empty-space skipping for every object)."""
    occupancy_objects: Annotated[int, at_least(1)] = 8
    """Objects whose density is sampled at each occupancy update (a running maximum keeps the union)."""
    occupancy_every: Annotated[int, at_least(1)] = 16
    occupancy_threshold: Annotated[float, UNIT_OPEN] = 1e-3
    color_threshold: Annotated[float, UNIT_OPEN] = 1e-4
    """Colour is evaluated only for samples whose weight exceeds this."""
    random_background: bool = True
    """Composite images with alpha on a random colour per ray while training."""
    lr_grid: Annotated[float, NON_NEGATIVE] = 0.1
    lr_networks: Annotated[float, NON_NEGATIVE] = 2e-3
    lr_codes: Annotated[float, NON_NEGATIVE] = 1e-2

    def check_relations(self, flag: Callable[[str], str]) -> None:
        """The box's corners in order (run by ``validate``)."""
        if not all(lo < hi for lo, hi in zip(self.box[:3], self.box[3:])):
            raise LangfieldError(f"{flag('box')} must be x0 y0 z0 x1 y1 z1 with x0 < x1 etc., got {self.box}")


@dataclass
class ClipNerfConfig:
    """Train `clipnerf` on a category dataset (`--data DIR` from `langfield world category chair --out DIR`, or
    `--category chair` to render one first): one conditional field for every object, with a learned shape code and
    appearance code per object (the auto-decoder regime)."""

    output: Path = Path("runs/clipnerf")
    category: Optional[Literal["chair", "table", "mug"]] = None
    """Render this procedural category into OUTPUT/category-data (once) and train on it, instead of --data."""
    objects: Annotated[int, at_least(1)] = 64
    """--category: objects in the dataset."""
    views: Annotated[int, at_least(1)] = 24
    """--category: views per object (every 8th held out)."""
    resolution: Annotated[int, at_least(8)] = 64
    """--category: image size."""
    data: Annotated[DataConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=DataConfig)
    trainer: Annotated[TrainerConfig, tyro.conf.OmitArgPrefixes] = field(
        default_factory=lambda: TrainerConfig(batch_rays=1024, max_steps=3000, eval_every=0)
    )
    model: ClipNerfModelConfig = field(default_factory=ClipNerfModelConfig)
