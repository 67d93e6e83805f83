"""Object kinds as unions of primitives, in an object frame standing on z = 0 (z up, metres-ish units)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class PartSpec:
    primitive: str  # sphere | box | cylinder | cone | torus
    offset: tuple[float, float, float]
    dims: tuple[float, float, float]
    upright: bool = False  # rotate the primitive's z axis onto the object's y axis (a standing ring)


def _legs(dx: float, dy: float, radius: float, half_height: float) -> list[PartSpec]:
    return [
        PartSpec("cylinder", (sx * dx, sy * dy, half_height), (radius, half_height, 0))
        for sx in (-1, 1)
        for sy in (-1, 1)
    ]


PARTS: dict[str, list[PartSpec]] = {
    "sphere": [PartSpec("sphere", (0, 0, 0.25), (0.25, 0, 0))],
    "cube": [PartSpec("box", (0, 0, 0.2), (0.2, 0.2, 0.2))],
    "cylinder": [PartSpec("cylinder", (0, 0, 0.25), (0.17, 0.25, 0))],
    "cone": [PartSpec("cone", (0, 0, 0.27), (0.23, 0.27, 0))],
    "torus": [PartSpec("torus", (0, 0, 0.07), (0.2, 0.07, 0))],
    "capsule": [
        PartSpec("cylinder", (0, 0, 0.3), (0.13, 0.17, 0)),
        PartSpec("sphere", (0, 0, 0.13), (0.13, 0, 0)),
        PartSpec("sphere", (0, 0, 0.47), (0.13, 0, 0)),
    ],
    "chair": [
        PartSpec("box", (0, 0, 0.25), (0.2, 0.2, 0.03)),
        PartSpec("box", (0, 0.17, 0.5), (0.2, 0.03, 0.22)),
        *_legs(0.16, 0.16, 0.025, 0.11),
    ],
    "table": [PartSpec("box", (0, 0, 0.3), (0.3, 0.2, 0.03)), *_legs(0.25, 0.15, 0.025, 0.135)],
    "mug": [
        PartSpec("cylinder", (0, 0, 0.17), (0.14, 0.17, 0)),
        PartSpec("torus", (0.16, 0, 0.18), (0.09, 0.025, 0), upright=True),
    ],
}


def footprint(parts: Sequence[PartSpec]) -> float:
    """Radius of the footprint on the ground of an object made of ``parts`` at size 1 (for placement without
    overlaps)."""
    radius = 0.0
    for part in parts:
        if part.primitive == "box":
            extent = (part.dims[0] ** 2 + part.dims[1] ** 2) ** 0.5
        elif part.primitive == "torus":
            extent = part.dims[0] + part.dims[1]
        else:
            extent = part.dims[0]
        radius = max(radius, (part.offset[0] ** 2 + part.offset[1] ** 2) ** 0.5 + extent)
    return radius


def height(parts: Sequence[PartSpec]) -> float:
    """Top of an object made of ``parts`` at size 1."""
    top = 0.0
    for part in parts:
        if part.primitive == "sphere":
            extent = part.dims[0]
        elif part.primitive == "torus":
            extent = part.dims[0] + part.dims[1] if part.upright else part.dims[1]
        else:
            extent = part.dims[2] if part.primitive == "box" else part.dims[1]
        top = max(top, part.offset[2] + extent)
    return top
