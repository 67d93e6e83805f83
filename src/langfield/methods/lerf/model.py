"""The ``lerf`` model: the ``nerf`` model plus a language field.

Language field (deferred decoding, for CPU speed): a grid of ``language_channels`` features is read only at the
samples that carry weight, volume-rendered with the radiance field's weights *detached* (and at detached
positions), divided by the ray's opacity, and decoded per ray by a small MLP together with the crop scale into the
encoder's embedding space; the embedding is normalised after rendering. A second small head decodes the same
rendered features into the encoder's dense features (LERF's DINO regularisation). The language losses therefore
never reach density or colour.

Scale: a crop that covers a fraction ``f`` of the image height, seen at depth ``t`` by a camera of focal length
``fy``, spans ``f · H · t / fy`` world units; that world size (over the scene box diagonal) is the decoder's scale
input, as in LERF, so one query scale means the same physical size in every view.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from langfield.core import RayBatch, SceneInfo
from langfield.errors import LangfieldError
from langfield.fields.grid import DenseGrid
from langfield.methods.lerf.config import LerfModelConfig
from langfield.methods.nerf.model import NerfModel

HUBER_DELTA = 1.25


def _mlp(inputs: int, hidden: int, outputs: int, layers: int = 2) -> nn.Sequential:
    modules: list[nn.Module] = []
    width = inputs
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
        width = hidden
    modules.append(nn.Linear(width, outputs))
    return nn.Sequential(*modules)


class LerfModel(NerfModel):
    config: LerfModelConfig

    def __init__(
        self, config: LerfModelConfig, scene: SceneInfo, embed_dim: int | None = None, dense_dim: int | None = None
    ):
        super().__init__(config, scene)
        self._encoders: dict = {}  # loaded on first use; a plain dict so they are not submodules (not checkpointed)
        if embed_dim is None or dense_dim is None:
            embed_dim, dense_dim = self._output_dims()
        aabb = scene.aabb.float()
        r = config.language_resolution
        self.language_grid = DenseGrid(config.language_channels, (r, r, r), aabb, init_std=0.1)
        self.language_head = _mlp(config.language_channels + 1, config.language_hidden, embed_dim)
        self.dense_head = _mlp(config.language_channels, config.dino_hidden, dense_dim, layers=1)
        self.extent = float((aabb[1] - aabb[0]).norm())
        self.supervision = None  # (pyramid, dense features), set by `prepare`

    # -- encoders -------------------------------------------------------------------------------------------------
    def _load(self, spec: str):
        if spec not in self._encoders:
            from langfield.encoders import load_encoder

            self._encoders[spec] = load_encoder(spec)
        return self._encoders[spec]

    @property
    def encoder(self):
        return self._load(self.config.encoder)

    @property
    def dense_encoder(self):
        return self._load(self.config.dense_encoder or self.config.encoder)

    def _output_dims(self) -> tuple[int, int]:
        probe = torch.zeros(1, self.encoder.input_size, self.encoder.input_size, 3)
        with torch.no_grad():
            dense = self.dense_encoder.dense_features(probe).shape[-1]
        return self.encoder.embed_dim, dense

    # -- training -------------------------------------------------------------------------------------------------
    def param_groups(self) -> list[dict]:
        cfg = self.config
        return super().param_groups() + [
            {"params": [self.language_grid.values], "lr": cfg.lr_language_grid},
            {
                "params": list(self.language_head.parameters()) + list(self.dense_head.parameters()),
                "lr": cfg.lr_language_mlp,
            },
        ]

    def prepare(self, dataset, progress: bool = True) -> None:
        from langfield.methods.lerf.pyramid import PyramidSettings, default_cache_dir, load_or_build

        cfg = self.config
        train = torch.tensor(dataset.train_indices)
        images = dataset.images[train].float()
        images = images[..., :3] + (1 - images[..., 3:]) * dataset.background  # composite on the background
        cache = None if cfg.cache_dir == "none" else Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
        settings = PyramidSettings(tuple(sorted(cfg.crop_fractions)), cfg.crop_stride)
        device = self.background.device
        pyramid, dense, _ = load_or_build(
            images, self.encoder.to("cpu"), self.dense_encoder.to("cpu"), settings, cache, progress
        )
        self.supervision = (pyramid.to(device), dense.to(device))

    def language_features(self, outputs: dict, origins: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        """(R, C) language features rendered with the detached weights, per unit opacity."""
        weights = outputs["weights"].detach()
        keep = weights > self.config.color_threshold
        rays = outputs["ray_indices"][keep]
        positions = origins[rays] + directions[rays] * outputs["t_mid"][keep, None]
        features = self.language_grid(positions.detach())
        rendered = torch.zeros(origins.shape[0], features.shape[-1], device=origins.device)
        rendered = rendered.index_add(0, rays, features * weights[keep, None])
        return rendered / outputs["opacity"].detach().clamp_min(0.1)[:, None]

    def world_scale(self, fractions: torch.Tensor, depth: torch.Tensor, fy: torch.Tensor, height: int) -> torch.Tensor:
        return fractions * height * depth / fy / self.extent

    def decode(self, features: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Unit embeddings (R, D) from rendered features and world scales."""
        return F.normalize(self.language_head(torch.cat([features, scale[:, None]], dim=-1)), dim=-1)

    def forward(self, origins: torch.Tensor, directions: torch.Tensor, background: torch.Tensor | None = None) -> dict:
        outputs = super().forward(origins, directions, background)
        outputs["language"] = self.language_features(outputs, origins, directions)
        return outputs

    def loss(self, outputs: dict, batch: RayBatch) -> dict[str, torch.Tensor]:
        from langfield.methods.lerf.pyramid import sample_dense

        if self.supervision is None:
            raise LangfieldError("lerf: the language supervision was not prepared (call model.prepare(dataset))")
        losses = super().loss(outputs, batch)
        cfg = self.config
        pyramid, dense = self.supervision
        cameras = self.scene.cameras
        lo, hi = min(cfg.crop_fractions), max(cfg.crop_fractions)
        fractions = lo + (hi - lo) * torch.rand(batch.views.shape[0], device=batch.views.device)
        scale = self.world_scale(
            fractions, outputs["depth"].detach(), cameras.fy.to(fractions.device)[batch.views], cameras.height
        )
        features = outputs["language"]
        embedding = self.decode(features, scale)
        target = pyramid.target(batch.views, batch.pixels, fractions)
        clip = F.huber_loss(embedding, target, delta=HUBER_DELTA, reduction="none").sum(-1).mean()
        losses["clip"] = clip
        losses["total"] = losses["total"] + cfg.clip_weight * clip
        if cfg.dino_weight > 0:
            dino_target = sample_dense(dense, batch.views, batch.pixels, cameras.width, cameras.height)
            dino = F.mse_loss(self.dense_head(features), dino_target)
            losses["dino"] = dino
            losses["total"] = losses["total"] + cfg.dino_weight * dino
        return losses

    @torch.no_grad()
    def render_language(self, cameras, index: int, chunk: int | None = None) -> dict[str, torch.Tensor]:
        """A whole view: ``rgb`` (H, W, 3), ``depth``, ``opacity`` (H, W), rendered ``language`` features
        (H, W, C) and the pixels' ray ``origins`` / ``directions`` (H, W, 3), for queries."""
        out = self.render_camera(cameras, index, chunk, outputs=("rgb", "opacity", "depth", "language"))
        origins, directions = cameras.to(self.background.device).image_rays(index)
        h, w = cameras.height, cameras.width
        out["origins"], out["directions"] = origins.reshape(h, w, 3), directions.reshape(h, w, 3)
        return out
