"""The original NeRF field (Mildenhall et al. 2020): positional encoding, an 8×256 MLP with a skip connection
at the fifth layer, a density head, and a view-dependent colour head (or a view-independent one)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from langfield.fields.encodings import PositionalEncoding


class MLPField(nn.Module):
    def __init__(
        self,
        depth: int = 8,
        width: int = 256,
        skip: int = 4,
        position_frequencies: int = 10,
        view_frequencies: int = 4,
        view_dependent: bool = True,
    ):
        super().__init__()
        self.position_encoding = PositionalEncoding(3, position_frequencies)
        self.view_encoding = PositionalEncoding(3, view_frequencies) if view_dependent else None
        view_dim = self.view_encoding.out_dim if self.view_encoding is not None else 0
        in_dim = self.position_encoding.out_dim
        self.skip = skip
        self.layers = nn.ModuleList()
        width_in = in_dim
        for i in range(depth):
            self.layers.append(nn.Linear(width_in, width))
            width_in = width + (in_dim if i == skip else 0)
        self.density_head = nn.Linear(width, 1)
        self.feature = nn.Linear(width, width)
        self.color_head = nn.Sequential(
            nn.Linear(width + view_dim, width // 2), nn.ReLU(inplace=True), nn.Linear(width // 2, 3)
        )

    def _trunk(self, positions: torch.Tensor) -> torch.Tensor:
        encoded = self.position_encoding(positions)
        h = encoded
        for i, layer in enumerate(self.layers):
            h = F.relu(layer(h))
            if i == self.skip:
                h = torch.cat([h, encoded], dim=-1)
        return h

    def forward(self, positions: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self._trunk(positions)
        sigma = F.relu(self.density_head(h)[:, 0])
        features = self.feature(h)
        if self.view_encoding is not None:
            features = torch.cat([features, self.view_encoding(directions)], dim=-1)
        rgb = torch.sigmoid(self.color_head(features))
        return sigma, rgb

    def density(self, positions: torch.Tensor) -> torch.Tensor:
        """Density alone: the view-dependent colour head is not evaluated."""
        return F.relu(self.density_head(self._trunk(positions))[:, 0])
