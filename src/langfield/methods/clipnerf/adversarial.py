"""The adversarial regime of clipnerf (GRAF, Schwarz et al. 2020, as CLIP-NeRF trains its generator): codes drawn from
a Gaussian, cameras drawn from the category's view distribution, K×K patches rendered with a random scale and
position, and a patch discriminator that tells them from patches of real images sampled the same way. Non-saturating
losses, R1 gradient penalty on real patches. No object indices and no poses of the real images are needed.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class PatchDiscriminator(nn.Module):
    """(N, K, K, 3) patches in [0, 1] → (N,) logits (real > 0)."""

    def __init__(self, width: int = 64):
        super().__init__()

        def down(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2)]

        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, 1, 1),
            nn.LeakyReLU(0.2),
            *down(width, 2 * width),
            *down(2 * width, 4 * width),
            *down(4 * width, 4 * width),
        )
        self.head = nn.Linear(4 * width, 1)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        x = self.body(patches.permute(0, 3, 1, 2) * 2 - 1)
        return self.head(x.mean(dim=(2, 3)))[:, 0]


def sample_patches(
    count: int, patch: int, width: int, height: int, min_scale: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """GRAF's patch sampling: ``count`` grids of K×K pixel coordinates (u, v), each (count, K, K), spanning a random
    fraction ``scale`` ∈ [min_scale, 1] of the image at a random position inside it (scale 1: the whole image)."""
    u = torch.rand(3, count, generator=generator)
    scale = min_scale + (1 - min_scale) * u[0]
    steps = (torch.arange(patch) + 0.5) / patch  # (K,) in (0, 1)
    left = u[1] * (1 - scale) * width
    top = u[2] * (1 - scale) * height
    us = left[:, None, None] + (scale * width)[:, None, None] * steps[None, None, :]
    vs = top[:, None, None] + (scale * height)[:, None, None] * steps[None, :, None]
    return us.expand(count, patch, patch), vs.expand(count, patch, patch)


def real_patches(images: torch.Tensor, which: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``images`` (N, H, W, 3) at pixel coordinates (u, v) (count, K, K) of image ``which``
    (count,) → (count, K, K, 3)."""
    h, w = images.shape[1:3]
    grid = torch.stack([2 * u / w - 1, 2 * v / h - 1], dim=-1).to(images)  # align_corners=False: pixel centres at +0.5
    sampled = F.grid_sample(
        images[which].permute(0, 3, 1, 2), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return sampled.permute(0, 2, 3, 1)


def discriminator_loss(
    discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, r1_weight: float
) -> dict[str, torch.Tensor]:
    """Non-saturating loss of the discriminator with the R1 penalty (γ/2 · |∇D(real)|²)."""
    real = real.detach().requires_grad_(r1_weight > 0)
    d_real, d_fake = discriminator(real), discriminator(fake.detach())
    loss = F.softplus(d_fake).mean() + F.softplus(-d_real).mean()
    r1 = torch.zeros((), device=real.device)
    if r1_weight > 0:
        (gradient,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
        r1 = gradient.pow(2).flatten(1).sum(1).mean()
    total = loss + 0.5 * r1_weight * r1
    return {
        "total": total,
        "discriminator": loss,
        "r1": r1,
        "real_score": d_real.mean().detach(),
        "fake_score": d_fake.mean().detach(),
    }
