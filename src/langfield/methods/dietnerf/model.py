"""The ``dietnerf`` model: the ``nerf`` model plus DietNeRF's semantic-consistency loss.

Every ``semantic_every`` steps until ``semantic_until`` of training (``step_losses``): one camera is drawn at random
around the scene (:func:`sample_orbit_poses`), a whole low-resolution image is rendered from it with gradient (in
chunks whose activations are recomputed in the backward pass when the image exceeds one chunk), embedded by the
frozen image encoder, and ``semantic_weight · (1 − cos)`` to the embedding of a random training view is returned.
The training views' embeddings are computed once, in ``prepare``.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

from langfield.cameras import Cameras, sample_orbit_poses, scene_up
from langfield.cameras.paths import check_orbit_ranges, with_intrinsics
from langfield.core import SceneInfo
from langfield.errors import LangfieldError
from langfield.methods.dietnerf.config import DietNerfModelConfig
from langfield.methods.nerf.model import NerfModel


class DietNerfModel(NerfModel):
    config: DietNerfModelConfig

    def __init__(self, config: DietNerfModelConfig, scene: SceneInfo):
        super().__init__(config, scene)
        self._encoder = {}  # loaded on first use; a plain dict so the frozen encoder is not checkpointed
        self._progress = 0.0  # the trainer's progress through training, set by `before_step`
        self.targets: torch.Tensor | None = None  # (N, D) embeddings of the training views, set by `prepare`
        self.pose_center, self.pose_up, self.radius_range = self._pose_frame(scene)
        reference = scene.cameras[0]
        self.pose_camera = reference.scaled(config.semantic_resolution / reference.height)

    def _pose_frame(self, scene: SceneInfo) -> tuple[torch.Tensor, torch.Tensor, tuple[float, float]]:
        cfg = self.config
        center = scene.aabb.float().mean(dim=0) if cfg.center is None else torch.tensor(cfg.center, dtype=torch.float32)
        up = scene_up(scene.cameras).float() if cfg.up is None else torch.tensor(cfg.up, dtype=torch.float32)
        if not float(up.norm()) > 0:  # --model.up is checked where parsed; this is the cameras' own up
            raise LangfieldError("dietnerf random poses: the training cameras give no up direction; pass --model.up")
        if cfg.radius_range is None:  # the options were checked where parsed; a range taken from the cameras here
            distances = (scene.cameras.origins.float() - center).norm(dim=-1)
            radius = (float(distances.min()), float(distances.max()))
            try:
                check_orbit_ranges(radius, cfg.elevation_range, cfg.azimuth_range)
            except ValueError as exc:
                raise LangfieldError(f"dietnerf random poses: {exc}; pass --model.radius-range") from None
        else:
            radius = (float(cfg.radius_range[0]), float(cfg.radius_range[1]))
        return center, up / up.norm(), radius

    @property
    def encoder(self):
        if "encoder" not in self._encoder:
            from langfield.encoders import load_encoder

            encoder = load_encoder(self.config.encoder)
            encoder.eval().requires_grad_(False)  # frozen: gradients flow through it to the render only
            self._encoder["encoder"] = encoder
        return self._encoder["encoder"]

    # -- training -------------------------------------------------------------------------------------------------
    def prepare(self, dataset, progress: bool = True) -> None:
        device = self.background.device
        images = torch.stack([dataset.rgb(i) for i in dataset.train_indices]).to(device)
        with torch.no_grad():
            self.targets = self.encoder.to(device).encode_image(images)

    def sample_cameras(self, count: int, generator: torch.Generator | None = None) -> Cameras:
        """``count`` random cameras of the semantic loss (the configured pose ranges, the render resolution)."""
        cfg = self.config
        c2w = sample_orbit_poses(
            count, self.pose_center, self.pose_up, self.radius_range, cfg.elevation_range, cfg.azimuth_range, generator
        )
        return with_intrinsics(self.pose_camera, c2w)

    def render_with_grad(self, cameras: Cameras, index: int = 0) -> torch.Tensor:
        """Image ``index`` of ``cameras`` (H, W, 3) on the scene background, differentiable with respect to the
        field. Images larger than ``semantic_chunk`` rays are rendered chunk by chunk with gradient checkpointing."""
        origins, directions = cameras.to(self.background.device).image_rays(index)
        chunk = self.config.semantic_chunk

        def render(o: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
            return self(o, d, self.background.expand(o.shape[0], 3))["rgb"]

        if origins.shape[0] <= chunk:
            rgb = render(origins, directions)
        else:
            rgb = torch.cat(
                [
                    checkpoint(render, origins[s : s + chunk], directions[s : s + chunk], use_reentrant=False)
                    for s in range(0, origins.shape[0], chunk)
                ]
            )
        return rgb.reshape(cameras.height, cameras.width, 3)

    def semantic_loss(self, generator: torch.Generator) -> torch.Tensor:
        """1 − cos between a render from a random pose and a random training view, in the encoder's space."""
        if self.targets is None:
            raise RuntimeError("DietNerfModel.prepare(dataset) must run before the semantic loss")
        image = self.render_with_grad(self.sample_cameras(1, generator))
        embedding = self.encoder.encode_image(image)[0]
        target = self.targets[int(torch.randint(len(self.targets), (1,), generator=generator))]
        return 1.0 - (embedding * target).sum()

    def before_step(self, step: int, progress: float, generator: torch.Generator) -> bool:
        self._progress = progress
        return super().before_step(step, progress, generator)

    def step_losses(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        cfg = self.config
        stopped = self._progress >= cfg.semantic_until
        if cfg.semantic_weight == 0 or step < cfg.semantic_start or stopped or step % cfg.semantic_every != 0:
            return {}
        loss = self.semantic_loss(generator)
        return {"semantic": loss, "total": cfg.semantic_weight * loss}
