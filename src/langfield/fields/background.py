"""Background models: the colour seen where a ray leaves the scene, as a function of its direction."""

from __future__ import annotations

import torch
from torch import nn

from langfield.fields.encodings import PositionalEncoding


class BackgroundMLP(nn.Module):
    """A small MLP of the (unit) ray direction, frequency-encoded, with a sigmoid output (DreamFusion)."""

    def __init__(self, frequencies: int = 2, hidden: int = 32):
        super().__init__()
        self.encoding = PositionalEncoding(3, frequencies)
        self.mlp = nn.Sequential(nn.Linear(self.encoding.out_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 3))

    def forward(self, directions: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mlp(self.encoding(directions)))
