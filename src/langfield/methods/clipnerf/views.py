"""Where the cameras of a category run stand: the point they look at, their distance, field of view and elevations,
read from the run's training cameras, so that edits, turntables and the mappers' random views see an object as the
generator was trained to draw it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from langfield.cameras import Cameras, orbit_cameras


@dataclass(frozen=True)
class ObjectViews:
    center: tuple[float, float, float]
    radius: float
    fov: float  # degrees, full horizontal field of view
    elevation: tuple[float, float]  # degrees above the horizontal (z up): the training cameras' range

    @staticmethod
    def of(cameras: Cameras) -> "ObjectViews":
        """The point nearest to every optical axis (least squares), the cameras' mean distance to it, their field of
        view and the range of their elevations."""
        c2w = cameras.c2w.double().cpu()
        origins, forward = c2w[:, :, 3], -c2w[:, :, 2]
        forward = forward / forward.norm(dim=-1, keepdim=True)
        projector = (
            torch.eye(3, dtype=torch.float64) - forward[:, :, None] * forward[:, None, :]
        )  # onto each axis' normal plane
        if len(cameras) > 1 and float(torch.linalg.matrix_rank(projector.sum(0))) == 3:
            center = torch.linalg.solve(projector.sum(0), (projector @ origins[:, :, None]).sum(0))[:, 0]
        else:
            center = origins[0] + forward[0] * origins[0].norm()
        offsets = origins - center
        distance = offsets.norm(dim=-1)
        elevation = torch.rad2deg(torch.asin((offsets[:, 2] / distance).clamp(-1, 1)))
        fov = math.degrees(2 * math.atan(cameras.width / (2 * float(cameras.fx[0]))))
        return ObjectViews(
            tuple(center.tolist()), float(distance.mean()), fov, (float(elevation.min()), float(elevation.max()))
        )

    @property
    def middle_elevation(self) -> float:
        return 0.5 * (self.elevation[0] + self.elevation[1])

    def cameras(self, azimuth: torch.Tensor, elevation: torch.Tensor, resolution: int) -> Cameras:
        """Square cameras at these angles (degrees; azimuth 0 in front of the object, -y)."""
        return orbit_cameras(azimuth, elevation, self.radius, self.fov, resolution, center=torch.tensor(self.center))

    def ring(self, count: int, resolution: int, elevation: float | None = None) -> Cameras:
        """``count`` cameras evenly spaced in azimuth at one elevation (default: the middle of the training range)."""
        azimuth = torch.arange(count) * (360.0 / count)
        return self.cameras(
            azimuth, torch.tensor(self.middle_elevation if elevation is None else elevation), resolution
        )

    def turntable(
        self, model, frames: int, resolution: int, radius: float | None = None, fov: float | None = None
    ) -> list:
        """``frames`` uint8 renders of ``model`` around the object at the middle elevation (default distance and
        field of view: these views')."""
        from langfield.export.turntable import turntable

        return turntable(
            model,
            frames,
            self.middle_elevation,
            self.radius if radius is None else radius,
            self.fov if fov is None else fov,
            resolution,
            center=torch.tensor(self.center),
        )

    def sample(self, count: int, resolution: int, generator: torch.Generator | None = None) -> Cameras:
        """Random cameras: azimuth uniform, elevation uniform over the area of the training cameras' band."""
        u = torch.rand(2, count, generator=generator)
        s0, s1 = (math.sin(math.radians(e)) for e in self.elevation)
        elevation = torch.rad2deg(torch.asin(s0 + (s1 - s0) * u[1]))
        return self.cameras(360.0 * u[0], elevation, resolution)
