"""A radiance field of a whole object category, conditioned on a shape code and an appearance code (CLIP-NeRF).

Disentangled as in CLIP-NeRF (Wang et al. 2022): the shape code drives a deformation network ``T`` whose output
displaces the position's encoding, ``Γ(p) + tanh(T(Γ(p), z_s))``; density is computed from that alone, and the
appearance code enters only the colour branch, after density — so an appearance code can never change the shape
(``density`` does not take it). Two backbones:

- ``mlp``: the paper's form — the displaced encoding feeds an MLP trunk (8×256 in the paper) with a density head
  and a colour branch;
- ``grid`` (default, fast on CPU): the deformation moves the sample into a shared template made of a density grid
  and a feature grid, ``p + max_offset · tanh(T(Γ(p), z_s))``; the colour MLP reads the template features.

``disentangled=False`` is the ablation of the paper: both codes go in with the position (the geometry path sees
``[Γ(p), z_s, z_a]``), so appearance can move density too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import nn

from langfield.checks import NON_NEGATIVE, at_least, finite
from langfield.fields.encodings import PositionalEncoding
from langfield.fields.grid import DenseGrid


@dataclass
class ConditionalFieldConfig:
    backbone: Literal["grid", "mlp"] = "grid"
    shape_dim: Annotated[int, at_least(1)] = 128
    """Shape code size (paper: 128)."""
    appearance_dim: Annotated[int, at_least(1)] = 128
    """Appearance code size (paper: 128)."""
    disentangled: bool = True
    """False: the ablation with both codes at the input of the geometry path."""
    position_frequencies: Annotated[int, NON_NEGATIVE] = 6
    """Frequencies of Γ(p), the encoding the deformation network reads (and the mlp trunk)."""
    deformation_depth: Annotated[int, at_least(1)] = 4
    """Layers of the deformation network T (paper: 4×256)."""
    deformation_width: Annotated[int, at_least(1)] = 64
    max_offset: Annotated[float, NON_NEGATIVE] = 0.3
    """grid: the largest displacement into the template, in scene units."""
    resolution: Annotated[int, at_least(2)] = 48
    """grid: lattice points per axis of the template grids."""
    feature_dim: Annotated[int, at_least(1)] = 8
    trunk_depth: Annotated[int, at_least(1)] = 8
    """mlp: layers of the trunk (paper: 8×256)."""
    trunk_width: Annotated[int, at_least(1)] = 256
    color_width: Annotated[int, at_least(1)] = 64
    view_frequencies: Annotated[int, NON_NEGATIVE] = 2
    density_shift: Annotated[float, finite()] = -2.0
    """Bias of the density before softplus: a little empty at the start."""


def _mlp(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class CodeMLP(nn.Module):
    """An MLP on ``[x, code]``, with the code's part of the first layer computed once per code: many samples share
    one ray's (or one object's) code, so ``W [x; z] = W_x x + (W_z z)[index]`` saves a (samples x code size) input."""

    def __init__(self, in_dim: int, code_dim: int, widths: list[int]):
        super().__init__()
        self.input = nn.Linear(in_dim, widths[0])
        self.code = nn.Linear(code_dim, widths[0], bias=False)
        self.rest = _mlp(widths)

    def forward(self, x: torch.Tensor, code: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (N, in); ``code`` (N, C), or (M, C) with ``index`` (N,) choosing each row's code."""
        projected = self.code(code)
        h = self.input(x) + (projected if index is None else projected[index])
        return self.rest(F.relu(h))

    @property
    def last(self) -> nn.Linear:
        last = self.rest[-1]
        assert isinstance(last, nn.Linear)
        return last


class ConditionalField(nn.Module):
    def __init__(self, config: ConditionalFieldConfig, aabb: torch.Tensor):
        super().__init__()
        self.config = cfg = config
        self.encoding = PositionalEncoding(3, cfg.position_frequencies)
        self.view_encoding = PositionalEncoding(3, cfg.view_frequencies)
        code_in = cfg.shape_dim + (0 if cfg.disentangled else cfg.appearance_dim)
        hidden = [cfg.deformation_width] * cfg.deformation_depth
        if cfg.backbone == "grid":
            shape = (cfg.resolution,) * 3
            self.density_grid = DenseGrid(1, shape, aabb)
            self.feature_grid = DenseGrid(cfg.feature_dim, shape, aabb, init_std=0.1)
            self.deformation = CodeMLP(self.encoding.out_dim, code_in, [*hidden, 3])
            features = cfg.feature_dim
        elif cfg.backbone == "mlp":
            self.deformation = CodeMLP(self.encoding.out_dim, code_in, [*hidden, self.encoding.out_dim])
            self.trunk = _mlp([self.encoding.out_dim] + [cfg.trunk_width] * cfg.trunk_depth)
            self.density_head = nn.Linear(cfg.trunk_width, 1)
            features = cfg.trunk_width
        else:
            raise ValueError(f"unknown backbone {cfg.backbone!r}")
        nn.init.zeros_(self.deformation.last.weight)  # start undeformed: every code renders the template
        nn.init.zeros_(self.deformation.last.bias)
        self.color_mlp = CodeMLP(
            features + self.view_encoding.out_dim, cfg.appearance_dim, [cfg.color_width, cfg.color_width, 3]
        )

    def _geometry_code(self, shape: torch.Tensor, appearance: torch.Tensor | None) -> torch.Tensor:
        if self.config.disentangled:
            return shape
        if appearance is None:
            raise ValueError("the entangled field needs the appearance code for density too")
        return torch.cat([shape, appearance], dim=-1)

    def geometry(
        self,
        positions: torch.Tensor,
        shape: torch.Tensor,
        appearance: torch.Tensor | None = None,
        index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(σ (N,), features (N, F)) at positions (N, 3) deformed by the shape codes: per sample (N, Ds), or per ray
        (R, Ds) with ``index`` (N,) naming each sample's ray. The appearance code is used only by the entangled
        ablation."""
        encoded = self.encoding(positions)
        offset = torch.tanh(self.deformation(encoded, self._geometry_code(shape, appearance), index))
        if self.config.backbone == "grid":
            moved = positions + self.config.max_offset * offset
            raw, features = self.density_grid(moved)[:, 0], self.feature_grid(moved)
        else:
            features = F.relu(self.trunk(encoded + offset))
            raw = self.density_head(features)[:, 0]
        return F.softplus(raw + self.config.density_shift), features

    def density(
        self,
        positions: torch.Tensor,
        shape: torch.Tensor,
        appearance: torch.Tensor | None = None,
        index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.geometry(positions, shape, appearance, index)[0]

    def color(
        self,
        features: torch.Tensor,
        directions: torch.Tensor,
        appearance: torch.Tensor,
        index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """rgb (N, 3) from the geometry's features, the view directions and the appearance codes (per sample, or per
        ray with ``index``)."""
        return torch.sigmoid(
            self.color_mlp(torch.cat([features, self.view_encoding(directions)], dim=-1), appearance, index)
        )

    def forward(
        self,
        positions: torch.Tensor,
        directions: torch.Tensor,
        shape: torch.Tensor,
        appearance: torch.Tensor,
        index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(σ (N,), rgb (N, 3)) with codes per sample, or per ray with ``index``."""
        sigma, features = self.geometry(positions, shape, appearance, index)
        return sigma, self.color(features, directions, appearance, index)

    def grids(self) -> list[DenseGrid]:
        return [self.density_grid, self.feature_grid] if self.config.backbone == "grid" else []
