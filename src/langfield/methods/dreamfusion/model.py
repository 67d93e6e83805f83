"""The ``dreamfusion`` model: geometry (density grid + blob), material (albedo grid + MLP, shaded), background,
random cameras with view-dependent prompts, and score distillation from a frozen diffusion prior.

threestudio's decomposition, without its registry: every part is a plain attribute built here from the config.
The trainer calls ``step_losses`` each step; there is no dataset and no ray batch.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from langfield.cameras import orbit_cameras
from langfield.core import Model, SceneInfo
from langfield.fields import DenseGrid, OccupancyGrid
from langfield.fields.background import BackgroundMLP
from langfield.methods.dreamfusion.config import DreamFusionModelConfig
from langfield.render import accumulate
from langfield.render.rendering import march_and_render
from langfield.render.shading import density_normals, lambertian

SHADINGS = ("albedo", "lambertian", "textureless")


def _uniform(bounds: tuple[float, float], u: torch.Tensor) -> torch.Tensor:
    return bounds[0] + (bounds[1] - bounds[0]) * u


def _ramp(weights: tuple[float, float], progress: float) -> float:
    return weights[0] + (weights[1] - weights[0]) * progress


class Guidance:
    """What drives the optimisation: the prior, its SDS loss and the prompt's conditions (not a module: the frozen
    prior is neither saved with the run nor seen by the optimiser)."""

    def __init__(self, config: DreamFusionModelConfig, device: torch.device):
        from langfield.guidance import load_prior
        from langfield.guidance.prompts import PromptProcessor, check_prompt
        from langfield.guidance.sds import ScoreDistillation

        check_prompt(config.prompt)
        self.prior = load_prior(config.guidance, device)
        self.sds = ScoreDistillation(self.prior, config.sds)
        self.prompts = PromptProcessor(self.prior, config.prompt, config.negative_prompt, config.views)


def initial_scene(config: DreamFusionModelConfig) -> SceneInfo:
    """The box, the depth range and eight cameras around the object at the middle of the camera ranges (the
    reference of `langfield render`'s orbit)."""
    b = config.bound
    aabb = torch.tensor([[-b, -b, -b], [b, b, b]], dtype=torch.float32)
    mid = lambda r: 0.5 * (r[0] + r[1])  # noqa: E731
    cameras = orbit_cameras(
        torch.arange(8) * 45.0,
        torch.tensor(mid(config.elevation_range)),
        mid(config.radius_range),
        mid(config.fov_range),
        64,
    )
    far = config.radius_range[1] + b * math.sqrt(3)
    return SceneInfo(aabb, 0.05, far, torch.tensor(config.background_color, dtype=torch.float32), cameras)


class DreamFusionModel(Model):
    config: DreamFusionModelConfig

    def __init__(self, config: DreamFusionModelConfig, scene: SceneInfo):
        super().__init__(scene)
        self.config = config
        aabb = scene.aabb.float()
        shape = (config.resolution,) * 3
        self.density_grid = DenseGrid(1, shape, aabb)
        self.feature_grid = DenseGrid(config.feature_dim, shape, aabb, init_std=0.1)
        self.albedo_mlp = nn.Sequential(
            nn.Linear(config.feature_dim, config.hidden_dim), nn.ReLU(inplace=True), nn.Linear(config.hidden_dim, 3)
        )
        self.background_mlp = BackgroundMLP() if config.background == "mlp" else None
        self.occupancy = OccupancyGrid(aabb, config.occupancy_resolution)
        self.voxel = float((aabb[1] - aabb[0]).max()) / (config.resolution - 1)
        self.step = config.step_ratio * self.voxel
        #: shading of ``forward`` (renders, videos, exports): a light at the camera
        self.eval_shading = "lambertian"
        self.guidance: Guidance | None = None
        self._progress = 0.0

    # -- training hooks ------------------------------------------------------------------------------------------
    def param_groups(self) -> list[dict]:
        cfg = self.config
        groups = [
            {"params": [self.density_grid.values], "lr": cfg.lr_density},
            {"params": [self.feature_grid.values], "lr": cfg.lr_features},
            {"params": list(self.albedo_mlp.parameters()), "lr": cfg.lr_mlp},
        ]
        if self.background_mlp is not None:
            groups.append({"params": list(self.background_mlp.parameters()), "lr": cfg.lr_background})
        return groups

    def prepare(self, dataset, progress: bool = True) -> None:
        self.guidance = Guidance(self.config, self.background.device)

    def before_step(self, step: int, progress: float, generator: torch.Generator) -> bool:
        self._progress = progress
        if step % self.config.occupancy_every == 0:
            self.occupancy.update(self.density, self.step, self.config.occupancy_threshold, generator=generator)
        return False

    # -- the field -----------------------------------------------------------------------------------------------
    def raw_density(self, positions: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        blob = cfg.blob_density * (1.0 - positions.norm(dim=-1) / cfg.blob_radius)
        return self.density_grid(positions)[:, 0] + blob

    def density(self, positions: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.raw_density(positions))

    def albedo(self, positions: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.albedo_mlp(self.feature_grid(positions)))

    def color(self, positions: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        return self.albedo(positions)

    def background_color(self, directions: torch.Tensor) -> torch.Tensor:
        if self.background_mlp is not None:
            return self.background_mlp(directions)
        return self.background.expand(directions.shape[0], 3)

    # -- rendering -----------------------------------------------------------------------------------------------
    def render_rays(
        self,
        origins: torch.Tensor,
        directions: torch.Tensor,
        background: torch.Tensor,
        shading: str,
        lights: torch.Tensor | None = None,
        normals: bool = False,
    ) -> dict:
        """Shaded rays. ``lights`` (R, 3): point-light position per ray (None: a light at the camera).
        ``normals``: also compute normals (and the orientation penalty) when the shading does not need them."""
        cfg = self.config
        rays, device = origins.shape[0], origins.device
        shaded: dict[str, torch.Tensor] = {}

        def density(positions: torch.Tensor, ray_ids: torch.Tensor) -> tuple[torch.Tensor, None]:
            return self.density(positions), None

        def color(where: torch.Tensor, view: torch.Tensor, ray_ids: torch.Tensor, features: None) -> torch.Tensor:
            color = torch.ones_like(where) if shading == "textureless" else self.albedo(where)
            if shading != "albedo" or normals:
                n = shaded["normals"] = density_normals(self.raw_density, where, cfg.normal_epsilon * self.voxel)
                if shading != "albedo":
                    to_light = (lights[ray_ids] - where) if lights is not None else -view
                    color = lambertian(color, n, F.normalize(to_light, dim=-1), cfg.ambient, cfg.diffuse)
            return color

        jitter = torch.rand(rays, device=device) if self.training else None
        out = march_and_render(
            origins,
            directions,
            self.density_grid.aabb,
            self.scene.near,
            self.step,
            density,
            color,
            background,
            occupied=self.occupancy.query,
            coarse=self.occupancy.coarse(),
            jitter=jitter,
            color_threshold=cfg.color_threshold,
        )
        out["orientation"], out["normal"] = out["opacity"].new_zeros(()), torch.zeros(rays, 3, device=device)
        colored = out.pop("colored")
        if "normals" in shaded and colored is not None:
            n, (_, w, ray_ids) = shaded["normals"], colored
            # DreamFusion's orientation loss: visible normals should not face away from the camera
            out["orientation"] = (w * (n * directions[ray_ids]).sum(-1).clamp_min(0.0) ** 2).sum() / rays
            out["normal"] = accumulate(n, w, ray_ids, rays)
        return out

    def forward(self, origins: torch.Tensor, directions: torch.Tensor, background: torch.Tensor | None = None) -> dict:
        bg = self.background_color(directions) if background is None else background
        return self.render_rays(origins, directions, bg, self.eval_shading, normals=True)

    # -- score distillation ------------------------------------------------------------------------------------------
    def sample_views(self, count: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        cfg = self.config
        u = torch.rand(count, 4, generator=generator)
        return {
            "azimuth": _uniform(cfg.azimuth_range, u[:, 0]),
            "elevation": _uniform(cfg.elevation_range, u[:, 1]),
            "radius": _uniform(cfg.radius_range, u[:, 2]),
            "fov": _uniform(cfg.fov_range, u[:, 3]),
        }

    def sample_shading(self, generator: torch.Generator) -> str:
        cfg = self.config
        if self._progress < cfg.albedo_warmup:
            return "albedo"
        u = float(torch.rand((), generator=generator))
        if u < cfg.textureless_probability:
            return "textureless"
        return "albedo" if u < cfg.textureless_probability + cfg.albedo_probability else "lambertian"

    def step_losses(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        cfg, progress = self.config, self._progress
        if self.guidance is None:
            self.prepare(None)
        guidance = self.guidance
        assert guidance is not None
        device, count, res = self.background.device, cfg.batch_size, cfg.render_resolution
        views = self.sample_views(count, generator)
        cameras = orbit_cameras(views["azimuth"], views["elevation"], views["radius"], views["fov"], res).to(device)
        pixels = res * res
        index = torch.arange(count, device=device).repeat_interleave(pixels)
        origins, directions = cameras.pixel_rays(index, torch.arange(pixels, device=device).repeat(count))
        # a point light near the camera's side of the object, so that the visible side is lit
        towards = F.normalize(
            cameras.origins.cpu()
            + cfg.light_jitter * torch.randn(count, 3, generator=generator) * views["radius"][:, None],
            dim=-1,
        )
        distance = views["radius"] * _uniform(cfg.light_distance_range, torch.rand(count, generator=generator))
        lights = (towards * distance[:, None]).to(device)[index]
        if cfg.background == "random":
            background = torch.rand(count, 3, generator=generator).to(device)[index]
        else:
            background = self.background_color(directions)
        shading = self.sample_shading(generator)
        orientation_weight = _ramp(cfg.orientation_weight, progress)
        out = self.render_rays(origins, directions, background, shading, lights, normals=orientation_weight > 0)
        images = out["rgb"].view(count, res, res, 3)
        condition, _ = guidance.prompts.condition(views["azimuth"], views["elevation"])
        sds = guidance.sds(images, condition, guidance.prompts.negative(count), progress, generator)
        opacity = out["opacity"].clamp(1e-5, 1 - 1e-5)
        losses = {
            "sds": sds["loss"],
            "orientation": out["orientation"],
            "opacity": torch.sqrt(opacity**2 + 0.01).mean(),
            "entropy": -(opacity * opacity.log() + (1 - opacity) * (1 - opacity).log()).mean(),
        }
        total = losses["sds"] + orientation_weight * losses["orientation"]
        total = (
            total
            + _ramp(cfg.opacity_weight, progress) * losses["opacity"]
            + _ramp(cfg.entropy_weight, progress) * losses["entropy"]
        )
        if cfg.tv_weight > 0:
            losses["tv"] = self.density_grid.total_variation()
            total = total + cfg.tv_weight * losses["tv"]
        losses.update({"grad_norm": sds["grad_norm"].detach(), "timestep": sds["timestep"].detach(), "total": total})
        return losses
