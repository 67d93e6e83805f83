"""The ``clipnerf`` models: a :class:`~langfield.fields.conditional.ConditionalField` shared by a category, rendered
with per-ray shape and appearance codes by uniform marching in the category's box (:class:`ClipNerfModel`), in two
training regimes:

- :class:`AutoDecoderModel` (``--model.regime autodecoder``): one learned shape code and appearance code per training
  object, fitted with the field to posed views of a category dataset;
- :class:`AdversarialModel` (``--model.regime adversarial``, GRAF): codes drawn from a Gaussian, patches rendered from
  random views and judged by a patch discriminator against the real images.

The generic tools (evaluation, camera paths, meshes) render the *selected* object (:meth:`ClipNerfModel.select`,
:meth:`~AutoDecoderModel.select_view`) or codes set by an edit (:meth:`ClipNerfModel.use_codes`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from langfield.core import Model, RayBatch, SceneInfo
from langfield.errors import LangfieldError
from langfield.fields import OccupancyGrid
from langfield.fields.conditional import ConditionalField
from langfield.methods.clipnerf.adversarial import PatchDiscriminator, discriminator_loss, real_patches, sample_patches
from langfield.methods.clipnerf.config import ClipNerfModelConfig
from langfield.methods.clipnerf.views import ObjectViews
from langfield.render.rendering import march_and_render


def build_model(config: ClipNerfModelConfig, scene: SceneInfo) -> "ClipNerfModel":
    """The model of the configured regime."""
    return (AdversarialModel if config.regime == "adversarial" else AutoDecoderModel)(config, scene)


class ClipNerfModel(Model):
    """The conditional renderer shared by both regimes; subclasses own the codes (``shape_codes``,
    ``appearance_codes``: (objects, D) tensors) and how they are trained."""

    shape_codes: torch.Tensor
    appearance_codes: torch.Tensor
    box: torch.Tensor
    active_object: torch.Tensor
    active_shape: torch.Tensor
    active_appearance: torch.Tensor
    config: ClipNerfModelConfig

    def __init__(self, config: ClipNerfModelConfig, scene: SceneInfo):
        super().__init__(scene)
        self.config = config
        self.random_background = config.random_background
        self.register_buffer("box", torch.tensor(config.box, dtype=torch.float32).view(2, 3))
        self.field = ConditionalField(config.field, self.box)
        self.occupancy = OccupancyGrid(self.box, config.occupancy_resolution)
        #: what the generic tools render: a training object (>= 0, object 0 by default) or, with -1, the codes of
        #: `active_shape` / `active_appearance` (an edit, an inversion)
        self.register_buffer("active_object", torch.zeros((), dtype=torch.long))
        self.register_buffer("active_shape", torch.zeros(config.field.shape_dim))
        self.register_buffer("active_appearance", torch.zeros(config.field.appearance_dim))

    @property
    def objects(self) -> int:
        return self.shape_codes.shape[0]

    @property
    def step(self) -> float:
        extent = float((self.box[1] - self.box[0]).max())
        return self.config.step_ratio * extent / (self.config.field.resolution - 1)

    # -- codes -------------------------------------------------------------------------------------------------
    def select(self, index: int) -> None:
        """Render training object ``index`` from now on."""
        if not 0 <= index < self.objects:
            raise LangfieldError(
                f"object {index} does not exist (the run has {self.objects} objects, 0..{self.objects - 1})"
            )
        self.active_object.fill_(index)

    def use_codes(self, shape: torch.Tensor, appearance: torch.Tensor) -> None:
        """Render these codes from now on (an edit, an inversion)."""
        self.active_shape.copy_(shape.detach())
        self.active_appearance.copy_(appearance.detach())
        self.active_object.fill_(-1)

    def active_codes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (shape, appearance) codes the generic tools render."""
        k = int(self.active_object)
        if k < 0:
            return self.active_shape, self.active_appearance
        return self.shape_codes[k], self.appearance_codes[k]

    @contextmanager
    def frozen(self) -> Iterator["ClipNerfModel"]:
        """Evaluation mode with no gradient to the field or the codes, for optimising something else through
        renders (inversion, mappers); restores both on exit."""
        was_training = self.training
        trainable = [p for p in self.parameters() if p.requires_grad]
        self.eval()
        for p in trainable:
            p.requires_grad_(False)
        try:
            yield self
        finally:
            for p in trainable:
                p.requires_grad_(True)
            self.train(was_training)

    def sample_codes(self, count: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(shape (count, Ds), appearance (count, Da)) codes of training objects chosen at random: sources of edits."""
        chosen = torch.randint(self.objects, (count,), generator=generator).to(self.box.device)
        return self.shape_codes.detach()[chosen], self.appearance_codes.detach()[chosen]

    # -- training hooks ----------------------------------------------------------------------------------------
    def _field_groups(self) -> list[dict]:
        cfg = self.config
        grids = [g.values for g in self.field.grids()]
        networks = [p for p in self.field.parameters() if all(p is not g for g in grids)]
        return ([{"params": grids, "lr": cfg.lr_grid}] if grids else []) + [{"params": networks, "lr": cfg.lr_networks}]

    @torch.no_grad()
    def update_occupancy(self, generator: torch.Generator | None = None) -> float:
        """Union over objects: the density of a few random objects at jittered points of every cell, kept as a
        decaying running maximum, so the cells any object fills stay occupied."""
        count = min(self.config.occupancy_objects, self.objects)
        chosen = torch.randperm(self.objects, generator=generator)[:count].to(self.box.device)

        def union(positions: torch.Tensor) -> torch.Tensor:
            n = positions.shape[0]
            index = torch.zeros(n, dtype=torch.long, device=positions.device)
            return torch.stack(
                [
                    self.field.density(positions, self.shape_codes[k : k + 1], self.appearance_codes[k : k + 1], index)
                    for k in chosen.tolist()
                ]
            ).amax(dim=0)

        return self.occupancy.update(union, self.step, self.config.occupancy_threshold, generator=generator)

    def before_step(self, step: int, progress: float, generator: torch.Generator) -> bool:
        if step >= self.config.occupancy_every and step % self.config.occupancy_every == 0:
            self.update_occupancy(generator)
        return False

    # -- rendering ---------------------------------------------------------------------------------------------
    def forward(self, origins: torch.Tensor, directions: torch.Tensor, background: torch.Tensor | None = None) -> dict:
        shape, appearance = self.active_codes()
        rays = origins.shape[0]
        return self.render(origins, directions, shape.expand(rays, -1), appearance.expand(rays, -1), background)

    def density(self, positions: torch.Tensor) -> torch.Tensor:
        shape, appearance = self.active_codes()
        index = torch.zeros(positions.shape[0], dtype=torch.long, device=positions.device)
        return self.field.density(positions, shape[None], appearance[None], index)

    def color(self, positions: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        shape, appearance = self.active_codes()
        index = torch.zeros(positions.shape[0], dtype=torch.long, device=positions.device)
        return self.field(positions, directions, shape[None], appearance[None], index)[1]

    def render(
        self,
        origins: torch.Tensor,
        directions: torch.Tensor,
        shape: torch.Tensor,
        appearance: torch.Tensor,
        background: torch.Tensor | None = None,
    ) -> dict:
        """Render rays (R, 3) with per-ray codes (R, Ds) and (R, Da)."""
        field = self.field

        def density(positions: torch.Tensor, rays: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return field.geometry(positions, shape, appearance, index=rays)

        def color(
            positions: torch.Tensor, view: torch.Tensor, rays: torch.Tensor, features: torch.Tensor
        ) -> torch.Tensor:
            return field.color(features, view, appearance, index=rays)

        jitter = torch.rand(origins.shape[0], device=origins.device) if self.training else None
        out = march_and_render(
            origins,
            directions,
            self.box,
            self.scene.near,
            self.step,
            density,
            color,
            self.background if background is None else background,
            occupied=self.occupancy.query,
            coarse=self.occupancy.coarse(),
            jitter=jitter,
            color_threshold=self.config.color_threshold,
        )
        del out["colored"], out["deltas"]
        return out


class AutoDecoderModel(ClipNerfModel):
    """A learned code per training object (DeepSDF's auto-decoder), trained with the field on ray batches of the
    objects' posed views."""

    view_objects: torch.Tensor

    def __init__(self, config: ClipNerfModelConfig, scene: SceneInfo):
        if scene.view_objects is None:
            raise LangfieldError(
                "clipnerf trains on a category dataset whose frames name their object ('object_index'): "
                "make one with `langfield world category chair --out DIR` (or train with --model.regime adversarial)"
            )
        super().__init__(config, scene)
        objects = int(scene.view_objects.max()) + 1
        self.shape_codes = nn.Parameter(torch.randn(objects, config.field.shape_dim) * config.code_std)
        self.appearance_codes = nn.Parameter(torch.randn(objects, config.field.appearance_dim) * config.code_std)
        self.register_buffer("view_objects", scene.view_objects.clone().long())

    def code_statistics(self) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """((mean, std) of the shape codes, (mean, std) of the appearance codes) over the training objects, per
        dimension (std 1 with a single object)."""
        out = []
        for codes in (self.shape_codes.detach(), self.appearance_codes.detach()):
            std = codes.std(0) if len(codes) > 1 else torch.ones_like(codes[0])
            out.append((codes.mean(0), std))
        return out[0], out[1]

    def select_view(self, dataset, index: int) -> None:
        if dataset.objects is None:
            raise LangfieldError(
                f"{dataset.source}: its frames do not name their object ('object_index'): not a category dataset"
            )
        self.select(int(dataset.objects[index]))

    def param_groups(self) -> list[dict]:
        cfg = self.config
        return self._field_groups() + [{"params": [self.shape_codes, self.appearance_codes], "lr": cfg.lr_codes}]

    def render_batch(self, batch: RayBatch) -> dict:
        objects = self.view_objects[batch.views]
        outputs = self.render(
            batch.origins, batch.directions, self.shape_codes[objects], self.appearance_codes[objects], batch.background
        )
        outputs["objects"] = objects
        return outputs

    def loss(self, outputs: dict, batch: RayBatch) -> dict[str, torch.Tensor]:
        losses = super().loss(outputs, batch)
        objects = outputs["objects"].unique()
        prior = self.shape_codes[objects].pow(2).sum(-1).mean() + self.appearance_codes[objects].pow(2).sum(-1).mean()
        losses["codes"] = prior
        losses["total"] = losses["total"] + self.config.code_weight * prior
        return losses


class AdversarialModel(ClipNerfModel):
    """GRAF: codes drawn from N(0, code_std²), patches rendered from random views and judged against patches of the
    real images by a patch discriminator, which the trainer updates after every step of the field. A fixed bank of
    drawn codes stands for the run's "objects"; no object indices or poses of the dataset are used."""

    uses_ray_batches = False

    def __init__(self, config: ClipNerfModelConfig, scene: SceneInfo):
        super().__init__(config, scene)
        adv = config.adversarial
        self.register_buffer("shape_codes", torch.randn(adv.bank, config.field.shape_dim) * adv.code_std)
        self.register_buffer("appearance_codes", torch.randn(adv.bank, config.field.appearance_dim) * adv.code_std)
        self.discriminator = PatchDiscriminator(adv.discriminator_width)
        self._views = ObjectViews.of(scene.cameras)  # where generated patches are seen from (fixed with the scene)
        self._real: torch.Tensor | None = None  # (N, H, W, 3) real images, set by `prepare`
        self._fake: torch.Tensor | None = None  # this step's fake patches, for the discriminator

    def code_statistics(self) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """The prior the codes are drawn from: ((0, code_std) of shape, (0, code_std) of appearance) per dimension."""
        std = self.config.adversarial.code_std
        shape, appearance = self.shape_codes[0], self.appearance_codes[0]
        return (torch.zeros_like(shape), torch.full_like(shape, std)), (
            torch.zeros_like(appearance),
            torch.full_like(appearance, std),
        )

    def select_view(self, dataset, index: int) -> None:
        raise LangfieldError(
            "an adversarially trained clipnerf run has no codes for the dataset's objects, so its views cannot be "
            "compared one by one; score it with benchmarks/clipnerf_kid.py"
        )

    def param_groups(self) -> list[dict]:
        return self._field_groups()

    def prepare(self, dataset, progress: bool = True) -> None:
        if dataset.width != dataset.height:
            raise LangfieldError(
                f"{dataset.source}: the adversarial regime needs square images, got {dataset.width}x{dataset.height}"
            )
        images = dataset.images[dataset.train_indices].float()  # premultiplied RGBA
        self._real = (images[..., :3] + (1 - images[..., 3:]) * dataset.background).to(self.box.device)

    def critic_param_groups(self) -> list[dict]:
        return [{"params": list(self.discriminator.parameters()), "lr": self.config.adversarial.lr_discriminator}]

    def _patches(self, count: int, generator: torch.Generator):
        cameras = self.scene.cameras
        return sample_patches(
            count,
            self.config.adversarial.patch,
            cameras.width,
            cameras.height,
            self.config.adversarial.min_scale,
            generator,
        )

    def step_losses(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        adv = self.config.adversarial
        device = self.box.device
        cameras = self._views.sample(
            adv.images, self.scene.cameras.width, generator
        )  # square, like the real images (prepare)
        u, v = self._patches(adv.images, generator)
        views = torch.arange(adv.images).repeat_interleave(adv.patch**2)
        origins, directions = cameras.to(device).generate_rays(
            views.to(device), u.reshape(-1).to(device), v.reshape(-1).to(device)
        )
        shape, appearance = self.sample_codes(adv.images, generator)
        out = self.render(origins, directions, shape[views], appearance[views])
        fake = out["rgb"].view(adv.images, adv.patch, adv.patch, 3)
        self._fake = fake.detach()
        loss = torch.nn.functional.softplus(-self.discriminator(fake)).mean()
        return {"total": loss, "generator": loss}

    def critic_losses(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        if self._real is None or self._fake is None:
            raise LangfieldError("the adversarial regime needs the real images (prepare) and a generator step first")
        adv = self.config.adversarial
        which = torch.randint(len(self._real), (adv.images,), generator=generator).to(self.box.device)
        u, v = self._patches(adv.images, generator)
        real = real_patches(self._real, which, u.to(self.box.device), v.to(self.box.device))
        return discriminator_loss(self.discriminator, real, self._fake, adv.r1_weight)
