"""Configuration of the `dreamfusion` method (torch-free: it is also the CLI tree of `langfield generate`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Callable, Literal, Tuple

import tyro

from langfield.checks import NON_NEGATIVE, UNIT, UNIT_OPEN, at_least, between, finite, positive
from langfield.guidance.prompts import ViewPromptConfig
from langfield.guidance.sds import SDSConfig
from langfield.train.config import TrainerConfig


@dataclass
class DreamFusionModelConfig:
    """A radiance field optimised by Score Distillation Sampling (Poole et al., 2022): a density grid with a blob
    initialisation, an albedo field shaded by a random point light (Lambertian, textureless or albedo-only, drawn
    per step), normals from the density gradient, a background model, random cameras and view-dependent prompts."""

    prompt: str = ""
    """The text to turn into an object (`langfield generate PROMPT` sets it)."""
    negative_prompt: str = ""
    """Classifier-free guidance pushes away from this text (empty: the unconditional prediction)."""
    guidance: str = "langfield-prior"
    """Diffusion model: langfield-prior (embedded, offline), a .safetensors file of that architecture, or a
    diffusers folder / hub id (Stable Diffusion; DeepFloyd-IF-style pixel models)."""
    sds: SDSConfig = field(default_factory=SDSConfig)
    views: ViewPromptConfig = field(default_factory=ViewPromptConfig)

    # --- geometry and appearance --------------------------------------------------------------------------------
    bound: Annotated[float, positive()] = 1.0
    """The object lives in the box [-bound, bound]^3."""
    resolution: Annotated[int, at_least(4)] = 48
    """Lattice points per axis of the density and albedo grids (48: enough for 32-pixel renders; finer grids pick
    up the noise of score distillation)."""
    feature_dim: Annotated[int, at_least(1)] = 8
    hidden_dim: Annotated[int, at_least(1)] = 32
    """Width of the albedo MLP (one hidden layer) on the feature grid."""
    blob_density: Annotated[float, finite()] = 10.0
    """Initial density bias at the centre (Magic3D's blob: scale * (1 - |x| / radius))."""
    blob_radius: Annotated[float, positive()] = 0.5
    normal_epsilon: Annotated[float, positive()] = 0.5
    """Finite-difference step of the density gradient, in voxels."""
    step_ratio: Annotated[float, positive()] = 0.5
    """Ray-marching step as a fraction of a voxel."""
    occupancy_resolution: Annotated[int, at_least(2)] = 32
    occupancy_threshold: Annotated[float, UNIT_OPEN] = 0.01
    occupancy_every: Annotated[int, at_least(1)] = 16
    color_threshold: Annotated[float, UNIT_OPEN] = 1e-4
    """Samples with less weight skip albedo, normal and shading."""

    # --- shading ---------------------------------------------------------------------------------------------------
    ambient: Annotated[float, NON_NEGATIVE] = 0.3
    diffuse: Annotated[float, NON_NEGATIVE] = 0.7
    """Lambertian shading: albedo * (ambient + diffuse * max(0, n . l)). 0.3 / 0.7 matches the lighting of the
    procedural-world renders the embedded prior learned from (ambient 0.25-0.4); with DreamFusion's 0.1 / 0.9 the
    shaded renders come out darker than anything the prior saw (an orange cone reads "brown" to the embedded CLIP;
    development prompts of benchmarks/dreamfusion.py --dev: 4/6 retrieved at 0.1, 5/6 at 0.3)."""
    albedo_warmup: Annotated[float, UNIT] = 0.1
    """Fraction of the run shaded with albedo only (the shape forms from colour first)."""
    textureless_probability: Annotated[float, UNIT] = 0.3
    """After warm-up: chance per step of white albedo (shape must explain the prompt on its own)."""
    albedo_probability: Annotated[float, UNIT] = 0.2
    """After warm-up: chance per step of albedo without shading; otherwise Lambertian."""
    light_distance_range: Annotated[Tuple[float, float], positive(ordered=True)] = (0.8, 1.5)
    """Point-light distance from the centre, as a multiple of the camera's."""
    light_jitter: Annotated[float, NON_NEGATIVE] = 0.5
    """Standard deviation of the light's direction around the camera's (it lights the visible side)."""
    background: Literal["mlp", "constant", "random"] = "constant"
    """constant: `background_color`; mlp: a small network of the view direction (DreamFusion); random: a random
    colour per step (the constant one at render time). With the embedded prior the mlp drifts to the complement of
    the object's colour under classifier-free guidance (a blue cube on orange), which the embedded CLIP then
    misreads; the prior was trained on grey backgrounds, so constant white is the default."""
    background_color: Annotated[Tuple[float, float, float], UNIT] = (1.0, 1.0, 1.0)

    # --- cameras -----------------------------------------------------------------------------------------------------
    render_resolution: Annotated[int, at_least(8)] = 32
    """Side of the square renders fed to the guidance (32: the embedded prior's own size; 64 or more for Stable
    Diffusion, which upsamples them to its 512)."""
    batch_size: Annotated[int, at_least(1)] = 1
    """Renders per step."""
    radius_range: Annotated[Tuple[float, float], positive(ordered=True)] = (2.0, 2.6)
    elevation_range: Annotated[Tuple[float, float], between(-90, 90, ordered=True)] = (0.0, 80.0)
    """Degrees above the horizontal, uniform."""
    azimuth_range: Annotated[Tuple[float, float], finite(ordered=True)] = (-180.0, 180.0)
    """Degrees from the object's front (-y), counter-clockwise from above, uniform."""
    fov_range: Annotated[Tuple[float, float], between(0, 180, lo_open=True, hi_open=True, ordered=True)] = (35.0, 45.0)
    """Full field of view in degrees, uniform."""

    # --- regularisers (weights ramp linearly from the first to the second value over the run) ------------------------
    orientation_weight: Annotated[Tuple[float, float], NON_NEGATIVE] = (0.0, 0.01)
    """Penalty on visible normals facing away from the camera (DreamFusion's orientation loss)."""
    opacity_weight: Annotated[Tuple[float, float], NON_NEGATIVE] = (0.0, 0.0)
    """Penalty sqrt(opacity^2 + 0.01) per ray: against filling the view with fog."""
    entropy_weight: Annotated[Tuple[float, float], NON_NEGATIVE] = (0.0, 0.001)
    """Binary entropy of each ray's opacity: crisp silhouettes."""
    tv_weight: Annotated[float, NON_NEGATIVE] = 200.0
    """Total variation of the density grid (smooths the noise score distillation leaves in a dense grid)."""

    # --- learning rates -----------------------------------------------------------------------------------------------
    lr_density: Annotated[float, NON_NEGATIVE] = 0.1
    lr_features: Annotated[float, NON_NEGATIVE] = 0.05
    lr_mlp: Annotated[float, NON_NEGATIVE] = 1e-3
    lr_background: Annotated[float, NON_NEGATIVE] = 1e-3

    def check_relations(self, flag: Callable[[str], str]) -> None:
        """The rules between options (each option's own range is declared on its field); run by ``validate``."""
        from langfield.errors import LangfieldError

        if self.radius_range[0] <= self.bound:
            raise LangfieldError(
                f"{flag('radius_range')} must keep cameras outside the object's box (radius > {self.bound}), got "
                f"{self.radius_range}"
            )
        if self.textureless_probability + self.albedo_probability > 1:
            raise LangfieldError(
                f"{flag('textureless_probability')} and {flag('albedo_probability')} must sum to at most 1"
            )


@dataclass
class DreamFusionConfig:
    """Generate a 3D object from text: `dreamfusion` (score distillation from a diffusion model)."""

    output: Path = Path("runs/generate")
    trainer: Annotated[TrainerConfig, tyro.conf.OmitArgPrefixes] = field(
        default_factory=lambda: TrainerConfig(max_steps=3000, eval_every=0, lr_final_ratio=0.3, checkpoint_every=500)
    )
    model: DreamFusionModelConfig = field(default_factory=DreamFusionModelConfig)
