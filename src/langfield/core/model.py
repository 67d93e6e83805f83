"""The model protocol: what every method's model provides to the trainer, the evaluator and the exporters."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from langfield.cameras import Cameras
from langfield.core.batch import RayBatch
from langfield.core.scene import SceneInfo
from langfield.errors import LangfieldError
from langfield.resources import require_memory


class Model(nn.Module):
    """A radiance-field model. Subclasses implement ``forward`` (rays → outputs) and ``loss``."""

    background: torch.Tensor  # (3,) buffer

    #: composite training images that have alpha on a random background colour per ray
    random_background: bool = False
    #: rays rendered at once by ``render_camera`` (bounds memory: rays x samples x network width)
    render_chunk: int = 16384
    #: False for models that learn from their own renders only (``step_losses``), e.g. adversarially: the trainer then
    #: draws no ray batches from the dataset
    uses_ray_batches: bool = True

    def __init__(self, scene: SceneInfo):
        super().__init__()
        self.scene = scene
        self.register_buffer("background", scene.background.clone().float())

    def param_groups(self) -> list[dict]:
        """Parameter groups with their initial learning rates: ``[{"params": [...], "lr": float}, ...]``."""
        raise NotImplementedError

    def prepare(self, dataset, progress: bool = True) -> None:
        """Once before training (and on resume): precompute what the method needs from the training images."""

    def before_step(self, step: int, progress: float, generator: torch.Generator) -> bool:
        """Per-step bookkeeping (occupancy updates, grid growth). Returns True when parameters were replaced,
        so the trainer rebuilds its optimiser."""
        return False

    def forward(self, origins: torch.Tensor, directions: torch.Tensor, background: torch.Tensor | None = None) -> dict:
        """Render rays. Returns at least ``rgb`` (R, 3), ``opacity`` (R,), ``depth`` (R,) and the packed samples'
        ``weights``, ``ray_indices`` and ``t_mid``."""
        raise NotImplementedError

    def render_batch(self, batch: RayBatch) -> dict:
        """Render a training batch. Models conditioned on what each view shows (a category's objects) look it up
        from ``batch.views``; the others render the rays."""
        return self(batch.origins, batch.directions, batch.background)

    def select_view(self, dataset, index: int) -> None:
        """Called before rendering view ``index`` of ``dataset`` for evaluation: conditioned models pick what that
        view shows (its object)."""

    def loss(self, outputs: dict, batch: RayBatch) -> dict[str, torch.Tensor]:
        mse = torch.mean((outputs["rgb"] - batch.target) ** 2)
        return {"total": mse, "mse": mse}

    def step_losses(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Losses of a step that do not come from its ray batch (e.g. DietNeRF's semantic consistency of a render
        from a random pose). Empty, or named terms for the log plus ``total``: their weighted sum, which the
        trainer adds to the batch loss."""
        return {}

    def critic_param_groups(self) -> list[dict]:
        """Parameter groups of an adversary (a discriminator), trained by its own optimiser after every step of the
        model on ``critic_losses``; empty for models without one."""
        return []

    def critic_losses(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The adversary's losses for this step (named terms and ``total``), after the model's update."""
        return {}

    def density(self, positions: torch.Tensor) -> torch.Tensor:
        """Volume density at world positions (for occupancy, meshes and point clouds)."""
        raise NotImplementedError

    def color(self, positions: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def render_chunked(
        self,
        origins: torch.Tensor,
        directions: torch.Tensor,
        chunk: int | None = None,
        outputs: tuple[str, ...] = ("rgb", "opacity", "depth"),
        before_chunk: Callable[[], None] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Render rays in evaluation mode, ``chunk`` at a time: each of ``outputs`` per ray. ``before_chunk`` is
        called before each chunk and may raise to abandon the render (the viewer does when its camera moves); the
        model's training mode is restored either way."""
        chunk = chunk or self.render_chunk
        was_training = self.training
        self.eval()
        try:
            parts: dict[str, list[torch.Tensor]] = {key: [] for key in outputs}
            for start in range(0, origins.shape[0], chunk):
                if before_chunk is not None:
                    before_chunk()
                out = self(origins[start : start + chunk], directions[start : start + chunk])
                for key in parts:
                    parts[key].append(out[key])
        finally:
            self.train(was_training)
        return {key: torch.cat(value) for key, value in parts.items()}

    def render_camera(
        self,
        cameras: Cameras,
        index: int,
        chunk: int | None = None,
        outputs: tuple[str, ...] = ("rgb", "opacity", "depth"),
        before_chunk: Callable[[], None] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Render a whole image: ``rgb`` (H, W, 3), ``opacity`` (H, W), ``depth`` (H, W), and any other per-ray
        ``outputs`` of the model's forward (e.g. lerf's ``language``); ``chunk`` and ``before_chunk`` as in
        :meth:`render_chunked`."""
        h, w = cameras.height, cameras.width
        # rays (24 B), the outputs (rgb, opacity, depth, ...) and their concatenation, per pixel
        require_memory(h * w * (24 + 16 * (2 + len(outputs))), f"a {w}x{h} render", "render at a lower resolution")
        origins, directions = cameras.to(self.background.device).image_rays(index)
        parts = self.render_chunked(origins, directions, chunk, outputs, before_chunk)
        return {key: value.reshape(h, w, -1).squeeze(-1) for key, value in parts.items()}


def load_weights(model: Model, state: dict, source: object, method: str, remedy: str) -> None:
    """``model.load_state_dict(state)``; weights that are missing, unexpected or mis-shaped (another version of the
    method, a damaged file) are one line naming ``source`` and ending in ``remedy``."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as exc:
        detail = " ".join(str(exc).split("\n", 2)[1:2]).strip() or str(exc).splitlines()[0]
        message = f"{source}: does not match this version of '{method}' ({detail[:160]}); {remedy}"
        raise LangfieldError(message) from None
