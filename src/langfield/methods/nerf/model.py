"""The ``nerf`` model: composes a :class:`GridField`, an :class:`OccupancyGrid`, the uniform marcher and the
packed volume renderer."""

from __future__ import annotations

import math

import torch

from langfield.core import Model, RayBatch, SceneInfo
from langfield.fields import GridField, OccupancyGrid
from langfield.fields.grid_field import density_shift
from langfield.methods.nerf.config import NerfModelConfig
from langfield.render import distortion_loss
from langfield.render.rendering import march_and_render
from langfield.resources import require_memory

#: the 8 lattice points around each sample and their weights (both grids of the field share one lattice)
_Corners = tuple[torch.Tensor, torch.Tensor]

#: the finest lattice the automatic resolution picks: lego at 400x400 in 20 minutes gained no more than 0.1 dB from 224
#: points (31,000 steps) over 160 (45,400 steps) on a development split (BENCHMARKS.md)
MAX_AUTO_RESOLUTION = 160


def pixel_footprint(scene: SceneInfo) -> float:
    """The width a training pixel covers at the scene box's centre: the median over the training cameras of the
    centre's distance divided by the focal length in pixels."""
    cameras = scene.cameras
    centre = scene.aabb.float().mean(dim=0)
    distance = (cameras.origins.float() - centre.to(cameras.origins.device)).norm(dim=-1)
    return float((distance / cameras.fx.float()).median())


def auto_resolution(scene: SceneInfo, lowest: int, highest: int = MAX_AUTO_RESOLUTION) -> int:
    """Lattice points per axis whose voxel (over the scene box's longest side) is about one pixel footprint: a
    finer lattice costs steps without a measured gain (lego at 100x100 for 585 s on a development split: 105, 112, 128
    and 160 points within 0.1 dB, 105 taking 37 % more steps than 160), within ``[lowest, highest]``."""
    extent = float((scene.aabb[1] - scene.aabb[0]).max())
    return int(min(highest, max(lowest, math.ceil(extent / pixel_footprint(scene)) + 1)))


#: the grids' learning rate (lazy Adam, 1,024-ray steps) where a voxel spans about one training pixel, and where it
#: spans at least FINE_PIXELS_PER_VOXEL of them: on a development split of lego the best rate rose with the image size
#: (12,000 steps: 0.4-0.8 best at 100x100, 105 points, a voxel ~1 pixel; 1.6 best at 400x400, 160 points, ~2.6 pixels;
#: lego at 800x800, ~5.2 pixels, 31.10 dB in 60 minutes at 1.6 against 30.89 at 0.8; BENCHMARKS.md). The threshold
#: lies between the measured cases; sizes between them (200x200: ~1.3 pixels) were not measured.
GRID_LR, FINE_PIXELS_GRID_LR, FINE_PIXELS_PER_VOXEL = 0.8, 1.6, 2.0


def auto_grid_lr(scene: SceneInfo, resolution: int) -> float:
    """The grids' learning rate for a lattice of ``resolution`` points per axis over the scene box: higher where
    each voxel spans several training pixels (see :data:`GRID_LR`)."""
    voxel = float((scene.aabb[1] - scene.aabb[0]).max()) / max(resolution - 1, 1)
    return FINE_PIXELS_GRID_LR if voxel >= FINE_PIXELS_PER_VOXEL * pixel_footprint(scene) else GRID_LR


class NerfModel(Model):
    growths: torch.Tensor
    config: NerfModelConfig

    def __init__(self, config: NerfModelConfig, scene: SceneInfo):
        super().__init__(scene)
        self.config = config
        self.random_background = config.random_background
        if config.resolution is None:  # chosen once from the training cameras; the run's config.json records it
            config.resolution = auto_resolution(scene, config.initial_resolution)
        resolution = config.resolution
        if config.lr_density is None or config.lr_features is None:  # recorded in config.json, as the resolution
            rate = auto_grid_lr(scene, max(resolution, config.initial_resolution))
            config.lr_density = rate if config.lr_density is None else config.lr_density
            config.lr_features = rate if config.lr_features is None else config.lr_features
        # the final grids with their gradients and Adam's two moments (4 copies), plus the occupancy grid
        final = max(resolution, config.initial_resolution) ** 3 * (1 + config.feature_dim) * 4 * 4
        require_memory(
            final + config.occupancy_resolution**3 * 8,
            f"--model.resolution {resolution} (its grids)",
            "lower --model.resolution",
        )
        aabb = scene.aabb.float()
        self.final_resolution = resolution
        #: voxel size of the final grid, fixed by `resolution` over the original box
        self.final_voxel = float((aabb[1] - aabb[0]).max()) / (resolution - 1)
        start_voxel = float((aabb[1] - aabb[0]).max()) / (config.initial_resolution - 1)
        shift = density_shift(config.initial_alpha, config.step_ratio * self.final_voxel)
        self.field = GridField(
            aabb,
            config.initial_resolution,
            config.feature_dim,
            config.hidden_dim,
            config.hidden_layers,
            config.view_frequencies,
            shift,
            config.render_bfloat16,
        )
        self._resize_grids(aabb, start_voxel)
        self.occupancy = OccupancyGrid(self.aabb, self._occupancy_shape())
        self.register_buffer("growths", torch.zeros((), dtype=torch.long))

    # -- geometry of the grids -------------------------------------------------------------------------------
    @property
    def aabb(self) -> torch.Tensor:
        return self.field.density_grid.aabb

    @property
    def voxel(self) -> float:
        grid = self.field.density_grid
        extent = grid.aabb[1] - grid.aabb[0]
        return float((extent / (torch.tensor(grid.shape, device=extent.device) - 1)).max())

    @property
    def step(self) -> float:
        return self.config.step_ratio * self.voxel

    def _grid_shape(self, aabb: torch.Tensor, voxel: float) -> tuple[int, ...]:
        extent = (aabb[1] - aabb[0]).tolist()
        return tuple(max(2, int(math.ceil(e / voxel)) + 1) for e in extent)

    def _resize_grids(self, aabb: torch.Tensor, voxel: float) -> None:
        shape = self._grid_shape(aabb, voxel)
        # make the box an exact multiple of the voxel so the lattice spacing is `voxel` on every axis
        lo = aabb[0]
        hi = lo + (torch.tensor(shape, dtype=aabb.dtype, device=aabb.device) - 1) * voxel
        box = torch.stack([lo, hi])
        for grid in self.field.grids():
            grid.resample(box, shape)

    def _occupancy_split(self) -> int:
        """How many times the occupancy grid splits each lattice cell per axis: enough that its cells are about as
        small as `occupancy_resolution` cells across the scene box (with the defaults: 2 at the coarse start, 1 from the
        first growth on)."""
        target = float((self.scene.aabb[1] - self.scene.aabb[0]).max()) / self.config.occupancy_resolution
        return max(1, round(self.voxel / target))

    def _occupancy_shape(self) -> tuple[int, int, int]:
        split = self._occupancy_split()
        x, y, z = (split * (n - 1) for n in self.field.density_grid.shape)
        return x, y, z

    def grow(self) -> None:
        """Upsample the grids one milestone towards the final resolution, shrinking the box on the first."""
        cfg = self.config
        self.growths += 1
        k, total = int(self.growths), len(cfg.grow_at)
        r0, r1 = cfg.initial_resolution, self.final_resolution
        resolution = round(r0 * (r1 / r0) ** (k / total))
        voxel = max(self.final_voxel, float((self.scene.aabb[1] - self.scene.aabb[0]).max()) / (resolution - 1))
        box = self.aabb
        if cfg.shrink_box and k == 1:
            occupied = self.occupancy.occupied_aabb(self.step, cfg.shrink_threshold, margin_cells=2)
            if occupied is not None:
                box = torch.stack([torch.maximum(occupied[0], box[0]), torch.minimum(occupied[1], box[1])])
        self._resize_grids(box.clone(), voxel)
        # the occupancy grid's cells follow the new lattice and start afresh (`before_step` re-evaluates them at
        # once: the bound is exact, no history is needed)
        self.occupancy.resize(self.aabb, self._occupancy_shape())

    # -- training hooks --------------------------------------------------------------------------------------
    def param_groups(self) -> list[dict]:
        cfg = self.config
        return [
            {"params": [self.field.density_grid.values], "lr": cfg.lr_density},
            {"params": [self.field.feature_grid.values], "lr": cfg.lr_features},
            {"params": list(self.field.color_mlp.parameters()), "lr": cfg.lr_mlp},
        ]

    def update_occupancy(self, generator: torch.Generator | None = None) -> float:
        # the grid bounds its density over each of its cells exactly: no sampling (instant-ngp samples a random point
        # per cell: at 128^3, 2 M density evaluations that took a third of the training time here)
        bound = self.field.max_density(self._occupancy_split())
        if tuple(bound.shape) != self.occupancy.shape:  # a checkpoint of a version whose cells did not follow
            self.occupancy.resize(self.aabb, tuple(bound.shape))
        return self.occupancy.update_from(bound, self.step, self.config.occupancy_threshold)

    def before_step(self, step: int, progress: float, generator: torch.Generator) -> bool:
        cfg = self.config
        changed = False
        if int(self.growths) < len(cfg.grow_at) and step >= cfg.grow_at[int(self.growths)]:
            self.grow()
            self.update_occupancy(generator)
            changed = True
        if step >= cfg.occupancy_warmup and step % cfg.occupancy_every == 0:
            self.update_occupancy(generator)
        return changed

    def loss(self, outputs: dict, batch: RayBatch) -> dict[str, torch.Tensor]:
        losses = super().loss(outputs, batch)
        target = batch.target
        if self.config.sample_color_weight > 0 and outputs["sample_colors"] is not None:
            # DVGO's per-sample colour loss: density where the sample's colour is wrong is pushed down
            colors, weights, ray_ids = outputs["sample_colors"]
            per_sample = (weights * ((colors - target[ray_ids]) ** 2).sum(dim=-1)).sum() / target.shape[0]
            losses["sample_color"] = per_sample
            losses["total"] = losses["total"] + self.config.sample_color_weight * per_sample
        if self.config.distortion_weight > 0 and outputs["weights"].numel() > 0:
            # distances in units of the scene box diagonal, so the weight does not depend on the scene's scale
            scale = float((self.scene.aabb[1] - self.scene.aabb[0]).norm())
            distortion = distortion_loss(
                outputs["weights"],
                outputs["t_mid"] / scale,
                outputs["deltas"] / scale,
                outputs["ray_indices"],
                target.shape[0],
            ).mean()
            losses["distortion"] = distortion
            losses["total"] = losses["total"] + self.config.distortion_weight * distortion
        if self.config.tv_weight > 0 and int(self.growths) < len(self.config.grow_at):
            tv = self.field.density_grid.total_variation()
            losses["tv"] = tv
            losses["total"] = losses["total"] + self.config.tv_weight * tv
        return losses

    # -- rendering -------------------------------------------------------------------------------------------
    def density(self, positions: torch.Tensor) -> torch.Tensor:
        return self.field.density(positions)

    def color(self, positions: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        return self.field.color(positions, directions)

    def forward(self, origins: torch.Tensor, directions: torch.Tensor, background: torch.Tensor | None = None) -> dict:
        cfg = self.config
        field = self.field

        def density(positions: torch.Tensor, rays: torch.Tensor) -> tuple[torch.Tensor, _Corners]:
            corners = field.density_grid.corners(positions)  # shared by both grids: computed once per sample
            return field.density_at(corners), corners

        def color(positions: torch.Tensor, directions: torch.Tensor, rays: torch.Tensor, corners: _Corners):
            return field.color_at(corners, directions)

        jitter = torch.rand(origins.shape[0], device=origins.device) if self.training else None
        # training marches whole rays at once; evaluation marches segments and drops opaque rays
        out = march_and_render(
            origins,
            directions,
            self.aabb,
            self.scene.near,
            self.step,
            density,
            color,
            self.background if background is None else background,
            occupied=self.occupancy.query,
            coarse=self.occupancy.coarse(cfg.skip_block) if cfg.skip_block > 1 else None,
            jitter=jitter,
            color_threshold=cfg.color_threshold,
            segment=None if self.training else 64,
            early_stop=cfg.early_stop_transmittance,
        )
        out["sample_colors"] = out.pop("colored")
        return out
