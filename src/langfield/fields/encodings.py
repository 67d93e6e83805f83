"""Input encodings."""

from __future__ import annotations

import torch
from torch import nn


class PositionalEncoding(nn.Module):
    """NeRF's frequency encoding: ``[x, sin(2^k x), cos(2^k x)]`` for ``k < frequencies``."""

    scales: torch.Tensor

    def __init__(self, in_dim: int, frequencies: int, include_input: bool = True):
        super().__init__()
        self.in_dim = in_dim
        self.include_input = include_input
        self.register_buffer("scales", 2.0 ** torch.arange(frequencies).float(), persistent=False)

    @property
    def out_dim(self) -> int:
        return self.in_dim * (2 * len(self.scales) + int(self.include_input))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled = (x[..., None, :] * self.scales[:, None]).flatten(-2)
        parts = [torch.sin(scaled), torch.cos(scaled)]
        if self.include_input:
            parts.insert(0, x)
        return torch.cat(parts, dim=-1)
