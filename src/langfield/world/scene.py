"""Random scenes: objects with attributes placed without overlap on a round table top, lights and background."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from langfield.errors import LangfieldError
from langfield.world.objects import PARTS, PartSpec, footprint, height
from langfield.world.vocabulary import COLORS, KINDS, MATERIALS, SIZES, Attributes

TABLE_RADIUS = 1.2
TABLE_COLOR = (0.55, 0.47, 0.38)
BACKGROUNDS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "grey": (0.5, 0.5, 0.5)}


@dataclass
class WorldObject:
    id: int
    attributes: Attributes
    position: tuple[float, float]  # on the table, z = 0
    yaw: float
    #: the object's own parts (category objects with their own proportions); default: those of its kind
    shape: tuple[PartSpec, ...] | None = None

    @property
    def scale(self) -> float:
        return SIZES[self.attributes.size][0]

    @property
    def parts(self) -> tuple[PartSpec, ...]:
        return self.shape if self.shape is not None else tuple(PARTS[self.attributes.kind])

    def bbox(self) -> list[list[float]]:
        r = footprint(self.parts) * self.scale
        x, y = self.position
        return [[x - r, y - r, 0.0], [x + r, y + r, height(self.parts) * self.scale]]


@dataclass
class Lighting:
    direction: tuple[float, float, float]  # towards the light, unit
    intensity: float
    ambient: float


@dataclass
class Scene:
    objects: list[WorldObject]
    lighting: Lighting
    background: tuple[float, float, float]
    table: bool = True
    seed: int = 0
    meta: dict = field(default_factory=dict)
    #: modulate every surface's colour by a fixed multi-scale pattern (photo-like texture that feature matching,
    #: as in structure from motion, can lock on to; masks, depth and captions are unchanged)
    textured: bool = False


def check_names(kinds=None, colors=None) -> None:
    for kind in kinds or ():
        if kind not in KINDS:
            raise LangfieldError(f"unknown kind '{kind}' (available: {', '.join(KINDS)})")
    for color in colors or ():
        if color not in COLORS:
            raise LangfieldError(f"unknown colour '{color}' (available: {', '.join(COLORS)})")


def random_attributes(rng: np.random.Generator, kinds=None, colors=None) -> Attributes:
    kinds = list(kinds or KINDS)
    colors = list(colors or COLORS)
    return Attributes(
        kind=kinds[rng.integers(len(kinds))],
        color=colors[rng.integers(len(colors))],
        material=list(MATERIALS)[rng.integers(len(MATERIALS))],
        size=list(SIZES)[rng.integers(len(SIZES))],
    )


def random_lighting(rng: np.random.Generator) -> Lighting:
    azimuth = rng.uniform(0, 2 * math.pi)
    elevation = math.radians(rng.uniform(35, 75))
    direction = (math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation))
    return Lighting(direction, float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.25, 0.4)))


def random_scene(
    seed: int,
    objects: int,
    kinds=None,
    colors=None,
    background: str = "white",
    table: bool = True,
    distinct: bool = True,
) -> Scene:
    """``objects`` objects placed without overlap on the table (a single object stands at the centre).

    With ``distinct``, no two objects share both colour and kind, so every caption names one object.
    """
    if objects < 1:
        raise LangfieldError(f"--objects must be at least 1, got {objects}")
    if background not in BACKGROUNDS:
        raise LangfieldError(f"unknown background '{background}' (available: {', '.join(BACKGROUNDS)})")
    check_names(kinds, colors)
    rng = np.random.default_rng(seed)
    placed: list[WorldObject] = []
    taken: set[tuple[str, str]] = set()
    for index in range(objects):
        for _ in range(500):
            attributes = random_attributes(rng, kinds, colors)
            if distinct and (attributes.color, attributes.kind) in taken:
                continue
            radius = footprint(PARTS[attributes.kind]) * SIZES[attributes.size][0]
            if objects == 1:
                position = (0.0, 0.0)
            else:
                rho = math.sqrt(rng.uniform(0, 1)) * (TABLE_RADIUS - radius - 0.05)
                phi = rng.uniform(0, 2 * math.pi)
                position = (rho * math.cos(phi), rho * math.sin(phi))
            clear = all(
                math.dist(position, other.position) > radius + footprint(other.parts) * other.scale + 0.05
                for other in placed
            )
            if clear:
                placed.append(WorldObject(index + 1, attributes, position, float(rng.uniform(0, 2 * math.pi))))
                taken.add((attributes.color, attributes.kind))
                break
        else:
            raise LangfieldError(f"cannot place {objects} objects without overlap on the table (placed {len(placed)})")
    return Scene(placed, random_lighting(rng), BACKGROUNDS[background], table, seed)
