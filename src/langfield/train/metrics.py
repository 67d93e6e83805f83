"""Image metrics: PSNR and SSIM (Wang et al. 2004: 11×11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    mse = float(torch.mean((prediction.float() - target.float()) ** 2))
    return 10.0 * math.log10(1.0 / max(mse, 1e-10))


def ssim(prediction: torch.Tensor, target: torch.Tensor, window: int = 11, sigma: float = 1.5) -> float:
    """Mean SSIM of two ``(H, W, 3)`` images in [0, 1] (valid-region convolution, as in the NeRF evaluations)."""
    x = prediction.float().permute(2, 0, 1)[:, None]
    y = target.float().permute(2, 0, 1)[:, None]
    coords = torch.arange(window, dtype=torch.float32, device=x.device) - (window - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    gx, gy = g.view(1, 1, 1, -1), g.view(1, 1, -1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, gx), gy)

    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    value = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return float(value.mean())


def kernel_distance(
    real: torch.Tensor,
    fake: torch.Tensor,
    subsets: int = 10,
    subset_size: int = 100,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018) between two sets of features (N, D), (M, D): the unbiased estimate of the squared
    MMD with the cubic polynomial kernel k(x, y) = (x·y / D + 1)³, averaged over random subsets. Returns (mean,
    standard deviation over subsets); 0 in expectation when both sets come from one distribution."""
    real, fake = real.double(), fake.double()
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        raise ValueError("KID needs at least two features in each set")
    dim = real.shape[1]
    values = []
    for _ in range(subsets):
        x = real[torch.randperm(len(real), generator=generator)[:size]]
        y = fake[torch.randperm(len(fake), generator=generator)[:size]]
        kxx, kyy, kxy = ((a @ b.T / dim + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        off = 1 - torch.eye(size, dtype=torch.float64)
        mmd = (kxx * off).sum() / (size * (size - 1)) + (kyy * off).sum() / (size * (size - 1)) - 2 * kxy.mean()
        values.append(float(mmd))
    tensor = torch.tensor(values)
    return float(tensor.mean()), float(tensor.std()) if subsets > 1 else 0.0
