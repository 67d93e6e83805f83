"""Sampling a prior on its own (DDIM, deterministic, with classifier-free guidance): to look at what the prior
has learned, independently of any 3D optimisation."""

from __future__ import annotations

import torch

from langfield.guidance.prior import DiffusionPrior, TextCondition


@torch.no_grad()
def sample_images(
    prior: DiffusionPrior,
    prompts: list[str],
    steps: int = 50,
    guidance_scale: float = 3.0,
    negative: str = "",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(N, H, W, 3) images in [0, 1], one per prompt."""
    n = len(prompts)
    condition = TextCondition.cat([prior.text_condition(prompts), prior.text_condition([negative] * n)])
    x = torch.randn((n, *prior.sample_shape), generator=generator).to(prior.device)
    alphas = prior.alphas_cumprod
    times = torch.linspace(prior.num_timesteps - 1, 0, steps).round().long().to(prior.device)
    for i, t in enumerate(times):
        a = alphas[t]
        a_next = alphas[times[i + 1]] if i + 1 < len(times) else torch.ones((), device=x.device)
        both = prior.predict_noise(torch.cat([x, x]), t.expand(2 * n), condition)
        text, uncond = both.chunk(2)
        eps = uncond + guidance_scale * (text - uncond)
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        if not prior.latent:
            x0 = x0.clamp(-1, 1)
            eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
    return prior.decode(x)
