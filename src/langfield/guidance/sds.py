"""Score Distillation Sampling (Poole et al., DreamFusion, 2022) as a loss on rendered images.

For renders x = g(θ) mapped to the prior's space, a timestep t and noise ε:

    ∇θ L_SDS = E_t,ε[ w(t) (ε̂_φ(x_t; y, t) − ε) ∂x/∂θ ],   x_t = √ᾱ_t x + √(1 − ᾱ_t) ε,

with ε̂ the classifier-free-guided prediction ε_u + s (ε_y − ε_u) (ε_u: the negative prompt's, or the
unconditional one). The denoiser runs without gradient: the term w(t)(ε̂ − ε) is injected as the gradient of x
through the surrogate ½‖x − sg(x − g)‖², whose derivative with respect to x is exactly g. Latent priors
back-propagate through their VAE encoder (``encode_images``), as in latent SDS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Callable, Literal

import torch

from langfield.checks import NON_NEGATIVE, UNIT, positive
from langfield.errors import LangfieldError
from langfield.guidance.prior import DiffusionPrior, TextCondition


@dataclass
class SDSConfig:
    guidance_scale: Annotated[float, NON_NEGATIVE] = 20.0
    """Classifier-free guidance scale s (DreamFusion uses 100 with Imagen; threestudio 100 with Stable Diffusion)."""
    min_step: Annotated[float, UNIT] = 0.2
    """Smallest timestep, as a fraction of the prior's training steps (DreamFusion 0.02; 0.2 keeps the end of the
    decreasing schedule from carving noise into the surface)."""
    max_step: Annotated[float, UNIT] = 0.98
    """Largest timestep at the start of the optimisation."""
    max_step_final: Annotated[float | None, UNIT] = 0.5
    """Largest timestep at the end: the upper bound anneals linearly to it over the run (None: no annealing).
    Schedule "random" only."""
    schedule: Literal["random", "decreasing"] = "decreasing"
    """How t is drawn. random: uniformly between min-step and the (annealed) upper bound. decreasing: uniformly
    within ± window of a centre that falls linearly from max-step to min-step over the run (DreamTime, Huang et
    al. 2023), so coarse structure settles before detail."""
    window: Annotated[float, UNIT] = 0.1
    """Half-width of the "decreasing" schedule's window, as a fraction of the prior's training steps."""
    weighting: Literal["sds", "uniform", "snr"] = "sds"
    """w(t): "sds" 1 − ᾱ_t (DreamFusion), "uniform" 1, or "snr" √(ᾱ_t (1 − ᾱ_t))."""
    grad_clip: Annotated[float | None, positive()] = None
    """Clip the injected gradient element-wise to ± this (None: off)."""

    def check_relations(self, flag: Callable[[str], str]) -> None:
        """The rules between options (each option's own range is declared on its field); run by ``validate``."""
        if not self.min_step < self.max_step:
            raise LangfieldError(
                f"{flag('min_step')} / {flag('max_step')} must satisfy 0 <= min-step < max-step <= 1, got "
                f"{self.min_step}..{self.max_step}"
            )
        if (
            self.schedule == "random"
            and self.max_step_final is not None
            and not self.min_step < self.max_step_final <= 1.0
        ):
            raise LangfieldError(
                f"{flag('max_step_final')} must lie in (min-step, 1], got {self.max_step_final}"
            )  # unused by "decreasing"


def timestep_range(config: SDSConfig, progress: float, count: int) -> tuple[int, int]:
    """Inclusive integer timestep bounds at ``progress`` in [0, 1] of the run."""
    progress = min(max(progress, 0.0), 1.0)
    low, high = config.min_step, config.max_step
    if config.schedule == "decreasing":
        centre = config.max_step + (config.min_step - config.max_step) * progress
        low, high = max(low, centre - config.window), min(high, centre + config.window)
    elif config.max_step_final is not None:
        high = config.max_step + (config.max_step_final - config.max_step) * progress
    low_step = int(round(low * (count - 1)))
    return low_step, max(low_step, int(round(high * (count - 1))))


def weight(config: SDSConfig, alphas: torch.Tensor) -> torch.Tensor:
    if config.weighting == "sds":
        return 1 - alphas
    if config.weighting == "uniform":
        return torch.ones_like(alphas)
    return (alphas * (1 - alphas)).sqrt()


class ScoreDistillation:
    """``sds(images, condition, negative, progress, generator)`` → ``{"loss", "grad_norm", "timestep"}``."""

    def __init__(self, prior: DiffusionPrior, config: SDSConfig):
        self.prior, self.config = prior, config

    def __call__(
        self,
        images: torch.Tensor,
        condition: TextCondition,
        negative: TextCondition,
        progress: float,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        prior, cfg = self.prior, self.config
        x = prior.encode_images(images)
        n, device = x.shape[0], x.device
        low, high = timestep_range(cfg, progress, prior.num_timesteps)
        t = torch.randint(low, high + 1, (n,), generator=generator).to(device)
        noise = torch.randn(x.shape, generator=generator).to(device=device, dtype=x.dtype)
        with torch.no_grad():
            noisy = prior.add_noise(x.detach(), noise, t)
            both = prior.predict_noise(
                torch.cat([noisy, noisy]), torch.cat([t, t]), TextCondition.cat([condition, negative])
            )
            eps_text, eps_negative = both.chunk(2)
            guided = eps_negative + cfg.guidance_scale * (eps_text - eps_negative)
            grad = weight(cfg, prior.alphas_cumprod[t]).view(-1, 1, 1, 1) * (guided - noise)
            grad = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
            if cfg.grad_clip is not None:
                grad = grad.clamp(-cfg.grad_clip, cfg.grad_clip)
        target = (x - grad).detach()
        loss = 0.5 * ((x - target) ** 2).sum() / n  # d loss / d x = grad / n
        return {"loss": loss, "grad_norm": grad.flatten(1).norm(dim=1).mean(), "timestep": t.float().mean()}
