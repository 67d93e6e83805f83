"""Queries on a trained ``lerf`` run: relevancy maps per pixel and per 3D point, with automatic scale selection.

Relevancy (LERF, Kerr et al. 2023): with φ the rendered unit embedding, φ_q the query's and φ_c^i the canonical
phrases' text embeddings,

    relevancy = min_i  exp(10 φ·φ_q) / (exp(10 φ·φ_c^i) + exp(10 φ·φ_q)),

i.e. the pairwise softmax against each canonical phrase, keeping the worst case. A query is evaluated at every
scale of ``query_fractions``; the scale whose map has the highest maximum is kept (LERF's automatic scale choice).
Each map is smoothed by a Gaussian of ``query_smoothing`` × image height (the language field's targets are crop
embeddings, so a single-pixel peak is noise; the blur puts the peak at the centre of the relevant region), and
pixels whose ray hits no surface (opacity < ``query_min_opacity``) have relevancy 0: there is nothing to name.

    from langfield.apps.query import open_query
    query = open_query("runs/lerf")
    result = query.view(["the red mug"], index=0)        # relevancy (1, H, W), best pixel, 3D point, scale
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch.nn import functional as F

from langfield.errors import LangfieldError

TEMPERATURE = 10.0


def relevancy(embeddings: torch.Tensor, queries: torch.Tensor, canonical: torch.Tensor) -> torch.Tensor:
    """(Q, P) relevancy of P unit embeddings (P, D) for Q query embeddings against C canonical embeddings."""
    positive = embeddings @ queries.T  # (P, Q)
    negative = embeddings @ canonical.T  # (P, C)
    pairs = torch.stack(
        [
            positive[:, :, None].expand(-1, -1, negative.shape[1]),
            negative[:, None, :].expand(-1, positive.shape[1], -1),
        ],
        dim=-1,
    )
    return torch.softmax(TEMPERATURE * pairs, dim=-1)[..., 0].min(dim=-1).values.T


def best_scales(
    maps_at: Callable[[float], torch.Tensor], fractions: Sequence[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """LERF's automatic scale choice: per query, the (Q, P) map of the scale whose map peaks highest (the first of
    equal peaks) and that scale (Q,). ``maps_at(fraction)`` gives every query's map at one scale; one scale's maps
    are kept at a time."""
    best_maps = maps_at(fractions[0])
    best_max = best_maps.max(dim=1).values
    best_fraction = torch.full_like(best_max, fractions[0])
    for fraction in fractions[1:]:
        maps = maps_at(fraction)
        peak = maps.max(dim=1).values
        better = peak > best_max
        best_maps[better] = maps[better]
        best_max = torch.where(better, peak, best_max)
        best_fraction = torch.where(better, torch.full_like(peak, fraction), best_fraction)
    return best_maps, best_fraction


@dataclass
class ViewAnswer:
    texts: list[str]
    relevancy: torch.Tensor  # (Q, H, W) at the chosen scale of each query
    fractions: torch.Tensor  # (Q,) chosen crop fraction
    best_pixel: torch.Tensor  # (Q, 2) (x, y)
    best_point: torch.Tensor  # (Q, 3) world position of the best pixel (expected depth)
    rgb: torch.Tensor  # (H, W, 3)
    points: torch.Tensor  # (H, W, 3) world positions of every pixel (expected depth)
    opacity: torch.Tensor  # (H, W)


def smooth(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur (standard deviation ``sigma`` pixels, replicated borders) of (Q, H, W) maps."""
    if sigma <= 0:
        return maps
    radius = max(1, int(3 * sigma))
    x = torch.arange(-radius, radius + 1, device=maps.device, dtype=maps.dtype)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    out = F.pad(maps[:, None], (radius, radius, 0, 0), mode="replicate")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1))
    out = F.conv2d(F.pad(out, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return out[:, 0]


class LanguageQuery:
    """Queries on a trained model; ``canonical``, ``fractions`` (query scales) and ``smoothing`` default to the
    run's configuration."""

    def __init__(
        self,
        model,
        canonical: tuple[str, ...] | None = None,
        fractions: tuple[float, ...] | None = None,
        smoothing: float | None = None,
    ):
        from langfield.methods.lerf.model import LerfModel

        if not isinstance(model, LerfModel):
            raise LangfieldError("queries need a 'lerf' run")
        self.model = model
        self.canonical = tuple(canonical or model.config.canonical_phrases)
        if not self.canonical or not all(p.strip() for p in self.canonical):
            raise LangfieldError("canonical phrases must be non-empty")
        self.fractions = tuple(fractions or model.config.query_fractions)
        if any(not 0 < f <= 1 for f in self.fractions):
            raise LangfieldError(f"query scales must be fractions of the image height in (0, 1], got {self.fractions}")
        self.smoothing = model.config.query_smoothing if smoothing is None else smoothing
        if self.smoothing < 0:
            raise LangfieldError(f"query smoothing must be >= 0, got {self.smoothing}")

    def text(self, texts: list[str]) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
            raise LangfieldError(f"query text must be non-empty, got {texts!r}")
        return self.model.encoder.encode_text([t.strip() for t in texts]).to(self.model.background.device)

    def view(self, texts: list[str], index: int = 0, cameras=None) -> ViewAnswer:
        """Relevancy maps of ``texts`` in view ``index`` of ``cameras`` (default: the run's training cameras)."""
        model = self.model
        cameras = cameras if cameras is not None else model.scene.cameras
        if not 0 <= index < len(cameras):
            raise LangfieldError(f"view index {index} is out of range (0..{len(cameras) - 1})")
        texts = [texts] if isinstance(texts, str) else list(texts)
        queries = self.text(texts)
        canonical = model.encoder.encode_text(list(self.canonical)).to(queries.device)
        out = model.render_language(cameras, index)
        h, w = out["depth"].shape
        features = out["language"].reshape(h * w, -1)
        depth = out["depth"].reshape(-1)
        fy = float(cameras.fy[index])
        surface = out["opacity"].reshape(-1) >= model.config.query_min_opacity

        def scale_maps(fraction: float) -> torch.Tensor:
            scale = model.world_scale(torch.full_like(depth, fraction), depth, torch.tensor(fy), h)
            maps = relevancy(model.decode(features, scale), queries, canonical)  # (Q, P)
            return smooth(maps.reshape(-1, h, w), self.smoothing * h).reshape(len(texts), -1) * surface

        with torch.no_grad():
            best_maps, best_fraction = best_scales(scale_maps, self.fractions)
        flat = best_maps.argmax(dim=1)
        points = out["origins"] + out["directions"] * out["depth"][..., None]
        best_pixel = torch.stack([flat % w, torch.div(flat, w, rounding_mode="floor")], dim=-1)
        return ViewAnswer(
            texts,
            best_maps.reshape(-1, h, w).cpu(),
            best_fraction.cpu(),
            best_pixel.cpu(),
            points.reshape(-1, 3)[flat].cpu(),
            out["rgb"].cpu(),
            points.cpu(),
            out["opacity"].cpu(),
        )

    def points(
        self, texts: list[str], views: list[int] | None = None, min_opacity: float = 0.5
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """3D relevancy: surface points (expected depth) of several views with their colour and relevancy.
        Returns positions (P, 3), colours (P, 3) and relevancy (Q, P)."""
        cameras = self.model.scene.cameras
        views = views if views is not None else list(range(0, len(cameras), max(1, len(cameras) // 8)))
        positions, colours, scores = [], [], []
        for index in views:
            answer = self.view(texts, index)
            keep = answer.opacity.reshape(-1) > min_opacity
            positions.append(answer.points.reshape(-1, 3)[keep])
            colours.append(answer.rgb.reshape(-1, 3)[keep])
            scores.append(answer.relevancy.reshape(len(answer.texts), -1)[:, keep])
        return torch.cat(positions), torch.cat(colours), torch.cat(scores, dim=1)
