"""The ``vanilla-nerf`` model: coarse and fine :class:`MLPField` networks, stratified then hierarchical (PDF)
sampling between the scene's near and far bounds, both levels supervised (or the coarse network alone, with
``fine_samples = 0``: DietNeRF's simplified NeRF)."""

from __future__ import annotations

import torch

from langfield.core import Model, RayBatch, SceneInfo
from langfield.fields import MLPField
from langfield.methods.vanilla_nerf.config import VanillaNerfModelConfig
from langfield.render import RaySamples, sample_pdf, stratified_bins
from langfield.render.rendering import composite, render_samples


class VanillaNerfModel(Model):
    # 192 samples per ray through 256-wide layers: 1024 rays keep a render under 1 GiB of activations
    render_chunk = 1024

    def __init__(self, config: VanillaNerfModelConfig, scene: SceneInfo):
        super().__init__(scene)
        self.config = config

        def make() -> MLPField:
            return MLPField(
                config.depth,
                config.width,
                config.skip,
                config.position_frequencies,
                config.view_frequencies,
                config.view_dependent,
            )

        self.coarse = make()
        self.fine = make() if config.fine_samples > 0 else None

    def param_groups(self) -> list[dict]:
        return [{"params": list(self.parameters()), "lr": self.config.lr}]

    def _render(self, field: MLPField, edges: torch.Tensor, origins, directions, bg) -> dict:
        rays, n = edges.shape[0], edges.shape[1] - 1
        samples = RaySamples.from_dense(edges)

        def density(positions: torch.Tensor, ray_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return field(positions, directions[ray_ids])  # (sigma, rgb) of every sample at once

        def color(
            positions: torch.Tensor, view: torch.Tensor, ray_ids: torch.Tensor, rgb: torch.Tensor
        ) -> torch.Tensor:
            return rgb

        part = render_samples(samples, origins, directions, density, color, color_threshold=-1.0)
        out = composite(part.rgb, part.opacity, part.depth, bg)
        out.update(
            weights=part.weights,
            ray_indices=part.ray_indices,
            t_mid=part.t_mid,
            dense_weights=part.weights.view(rays, n),
        )
        return out

    def forward(self, origins: torch.Tensor, directions: torch.Tensor, background: torch.Tensor | None = None) -> dict:
        bg = self.background if background is None else background
        rays = origins.shape[0]
        near = torch.full((rays,), self.scene.near, device=origins.device)
        far = torch.full((rays,), self.scene.far, device=origins.device)
        edges = stratified_bins(near, far, self.config.coarse_samples, None, jitter=self.training)
        coarse = self._render(self.coarse, edges, origins, directions, bg)
        if self.fine is None:
            return coarse
        fine_edges = sample_pdf(edges, coarse["dense_weights"], self.config.fine_samples, None, jitter=self.training)
        fine = self._render(self.fine, fine_edges, origins, directions, bg)
        fine["rgb_coarse"] = coarse["rgb"]
        return fine

    def loss(self, outputs: dict, batch: RayBatch) -> dict[str, torch.Tensor]:
        fine = torch.mean((outputs["rgb"] - batch.target) ** 2)
        if "rgb_coarse" not in outputs:
            return {"total": fine, "mse": fine}
        coarse = torch.mean((outputs["rgb_coarse"] - batch.target) ** 2)
        return {"total": fine + coarse, "mse": fine, "mse_coarse": coarse}

    @property
    def last_field(self) -> MLPField:
        """The network whose renders are the output: the fine one, or the coarse one without hierarchical sampling."""
        return self.coarse if self.fine is None else self.fine

    def density(self, positions: torch.Tensor) -> torch.Tensor:
        return self.last_field.density(positions)

    def color(self, positions: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        return self.last_field(positions, directions)[1]
