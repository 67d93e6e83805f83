"""Guidance from frozen text-conditioned diffusion models: Score Distillation Sampling (DreamFusion).

``load_prior(spec)`` picks the diffusion model from one string, the value of ``langfield generate --guidance``:

- ``langfield-prior`` (default): the embedded pixel-space prior shipped with the package, a small
  ``diffusers`` UNet2DConditionModel conditioned on frozen MiniLM token states, trained on procedural-world renders
  by ``scripts/train_langfield_prior.py``;
- ``PATH.safetensors``: weights of that architecture trained by the same script;
- a local folder or hub id of a ``diffusers`` pipeline: Stable Diffusion (latent space, with its VAE) or a
  DeepFloyd-IF-style pixel-space model (no ``vae``).

:class:`~langfield.guidance.sds.ScoreDistillation` turns a prior into a loss on rendered images.
"""

from __future__ import annotations

from langfield.guidance.prior import DiffusionPrior, TextCondition

DEFAULT_PRIOR = "langfield-prior"

__all__ = ["DEFAULT_PRIOR", "DiffusionPrior", "TextCondition", "load_prior"]


def load_prior(spec: str = DEFAULT_PRIOR, device=None) -> DiffusionPrior:
    from langfield.errors import LangfieldError

    spec = (spec or "").strip()
    if not spec:
        raise LangfieldError(
            "--guidance must name a diffusion model (e.g. langfield-prior or a Stable Diffusion folder)"
        )
    if spec == DEFAULT_PRIOR or spec.endswith(".safetensors"):
        from pathlib import Path

        from langfield.guidance.embedded import EmbeddedPrior

        prior = EmbeddedPrior.load(None if spec == DEFAULT_PRIOR else Path(spec).expanduser())
    else:
        from langfield.guidance.diffusers_prior import load_diffusers_prior

        prior = load_diffusers_prior(spec)
    prior.requires_grad_(False).eval()  # the denoiser is frozen; SDS never back-propagates through it
    return prior.to(device) if device is not None else prior
