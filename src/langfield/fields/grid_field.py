"""The fast field of the default ``nerf`` method (DVGO-style): a density grid, a feature grid and a small
colour MLP. Density and colour are separate calls so that colour is evaluated only where a sample carries weight."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from langfield.fields.encodings import PositionalEncoding
from langfield.fields.grid import DenseGrid
from langfield.fields.precision import inference_mlp


def density_shift(initial_alpha: float, step: float) -> float:
    """The bias that makes ``1 - exp(-softplus(0 + shift) * step)`` equal ``initial_alpha``."""
    sigma = -math.log(1.0 - initial_alpha) / step
    return math.log(math.expm1(sigma))


class GridField(nn.Module):
    def __init__(
        self,
        aabb: torch.Tensor,
        resolution: int,
        feature_dim: int,
        hidden_dim: int,
        hidden_layers: int,
        view_frequencies: int,
        shift: float,
        render_bfloat16: bool = False,
    ):
        super().__init__()
        shape = (resolution,) * 3
        self.density_grid = DenseGrid(1, shape, aabb)
        # a step touches a few percent of the feature rows: a row-sparse gradient, stepped lazily (the one-channel
        # density grid is cheaper dense: BENCHMARKS.md)
        self.feature_grid = DenseGrid(feature_dim, shape, aabb, init_std=0.1, sparse_grad=True)
        self.view_encoding = PositionalEncoding(3, view_frequencies)
        layers: list[nn.Module] = []
        width = feature_dim + self.view_encoding.out_dim
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, hidden_dim), nn.ReLU(inplace=True)]
            width = hidden_dim
        layers.append(nn.Linear(width, 3))
        self.color_mlp = nn.Sequential(*layers)
        self.shift = shift
        #: the colour MLP in bfloat16 for renders without gradients, where the hardware is fast at it
        self.render_bfloat16 = render_bfloat16

    def density(self, positions: torch.Tensor) -> torch.Tensor:
        return self.density_at(self.density_grid.corners(positions))

    def density_at(self, corners: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Density at positions given as their lattice corners and weights (:meth:`DenseGrid.corners`): the two
        grids share one lattice, so a renderer computes the corners once for density and colour."""
        return F.softplus(self.density_grid.lookup(*corners)[:, 0] + self.shift)

    def color(self, positions: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        return self.color_at(self.feature_grid.corners(positions), directions)

    def color_at(self, corners: tuple[torch.Tensor, torch.Tensor], directions: torch.Tensor) -> torch.Tensor:
        features = self.feature_grid.lookup(*corners)
        inputs = torch.cat([features, self.view_encoding(directions)], dim=-1)
        return torch.sigmoid(inference_mlp(self.color_mlp, inputs, self.render_bfloat16))

    @torch.no_grad()
    def max_density(self, split: int = 1) -> torch.Tensor:
        """The largest density anywhere in each cell of the lattice, each split ``split`` times per axis (exact:
        softplus is increasing): an occupancy update without sampling."""
        return F.softplus(self.density_grid.cell_max(split) + self.shift)

    def grids(self) -> list[DenseGrid]:
        return [self.density_grid, self.feature_grid]
