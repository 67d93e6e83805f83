"""Inversion of one image into a clipnerf run's codes and a camera pose (CLIP-NeRF, Sec. 3.4), so that a user's own
image can be edited.

Alternating optimisation of the photometric error between the image and a render, as in the paper: first the pose
(azimuth, elevation, distance of a camera orbiting the category's centre) with the mean codes, from several starting
azimuths; then the shape code, with Gaussian noise on it that is annealed to zero (it keeps the code from settling
in the first shape that roughly fits); then the appearance code. The field itself stays frozen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Optional, Tuple

import torch
import torch.nn.functional as F

from langfield.cameras import orbit_cameras
from langfield.checks import ELEVATION, NON_NEGATIVE, at_least, between, finite, positive
from langfield.errors import LangfieldError
from langfield.methods.clipnerf.views import ObjectViews


@dataclass
class InversionConfig:
    resolution: Annotated[int, at_least(8)] = 32
    """The image is resized to this (square) for the optimisation."""
    starts: Annotated[int, at_least(1)] = 8
    """Starting azimuths of the pose search, evenly spaced; the best after `search_steps` goes on."""
    search_steps: Annotated[int, NON_NEGATIVE] = 15
    pose_steps: Annotated[int, NON_NEGATIVE] = 60
    shape_steps: Annotated[int, NON_NEGATIVE] = 100
    appearance_steps: Annotated[int, NON_NEGATIVE] = 80
    lr_pose: Annotated[float, NON_NEGATIVE] = 0.03
    """Adam step on the angles (radians) and the distance."""
    lr_codes: Annotated[float, NON_NEGATIVE] = 0.05
    noise: Annotated[float, NON_NEGATIVE] = 0.5
    """Noise on the shape code at the start of its stage, in units of the codes' spread; annealed linearly to 0."""
    elevation: Annotated[Optional[float], ELEVATION] = None
    """Starting elevation of the pose search in degrees (default: the middle of the run's training cameras')."""
    radius: Annotated[Optional[float], positive()] = None
    """Starting camera distance (default: the run's training cameras' mean distance to the point they look at)."""
    fov: Annotated[Optional[float], between(0, 180, lo_open=True, hi_open=True)] = None
    """Field of view in degrees (default: the run's training cameras')."""
    center: Annotated[Optional[Tuple[float, float, float]], finite()] = None
    """The point the camera looks at (default: where the run's training cameras look)."""


@dataclass
class Inversion:
    shape: torch.Tensor  # (Ds,)
    appearance: torch.Tensor  # (Da,)
    azimuth: float  # degrees
    elevation: float
    radius: float
    losses: dict[str, list[float]] = field(default_factory=dict)  # per stage
    error: float = float("nan")  # final mean squared error
    fov: float = 0.0  # the camera's field of view (degrees) and the point it looks at
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)


def prepare_image(image: torch.Tensor, resolution: int) -> torch.Tensor:
    """An (H, W, 3 or 4) image in [0, 1] as RGB on white, area-resized to (resolution, resolution, 3)."""
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise LangfieldError(f"the image to invert must be (H, W, 3) or (H, W, 4), got {tuple(image.shape)}")
    if image.shape[-1] == 4:  # straight alpha on white, as the category datasets are composited
        image = image[..., :3] * image[..., 3:] + (1 - image[..., 3:])
    return F.interpolate(image.permute(2, 0, 1)[None].float(), size=(resolution, resolution), mode="area")[0].permute(
        1, 2, 0
    )


def invert(
    model, image: torch.Tensor, config: InversionConfig | None = None, generator: torch.Generator | None = None
) -> Inversion:
    """Codes and pose of ``image`` (H, W, 3 or 4, values in [0, 1]) for a trained ``ClipNerfModel``."""
    cfg = config or InversionConfig()
    device = model.box.device
    target = prepare_image(image.to(device), cfg.resolution)
    views = ObjectViews.of(model.scene.cameras)
    center = torch.tensor(cfg.center if cfg.center is not None else views.center, dtype=torch.float32)
    fov = cfg.fov if cfg.fov is not None else views.fov
    start_radius = cfg.radius if cfg.radius is not None else views.radius
    start_elevation = cfg.elevation if cfg.elevation is not None else views.middle_elevation
    mean_shape = model.shape_codes.detach().mean(0)
    mean_appearance = model.appearance_codes.detach().mean(0)
    spread = model.shape_codes.detach().std(0).mean() if model.objects > 1 else torch.tensor(1.0)

    def error(azimuth, elevation, radius, shape, appearance) -> torch.Tensor:
        cameras = orbit_cameras(azimuth, elevation, radius, fov, cfg.resolution, center=center).to(device)
        origins, directions = cameras.image_rays(0)
        rays = origins.shape[0]
        out = model.render(origins, directions, shape.expand(rays, -1), appearance.expand(rays, -1))
        return (out["rgb"].view_as(target) - target).pow(2).mean()

    def optimise(variables: list[torch.Tensor], lr: float, steps: int, loss_fn, log: list[float]) -> None:
        optimizer = torch.optim.Adam(variables, lr=lr)
        for step in range(steps):
            loss = loss_fn(step)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            log.append(float(loss.detach()))

    with model.frozen():
        losses: dict[str, list[float]] = {"search": [], "pose": [], "shape": [], "appearance": []}
        best = None
        for k in range(cfg.starts):  # pose search from several azimuths: the photometric error has many minima
            angles = (
                torch.tensor([360.0 * k / cfg.starts, start_elevation]).deg2rad().requires_grad_(True)
            )  # the pose lives on the CPU
            radius = torch.tensor(float(start_radius), requires_grad=True)
            log: list[float] = []
            optimise(
                [angles, radius],
                cfg.lr_pose,
                cfg.search_steps,
                lambda _: error(angles[0].rad2deg(), angles[1].rad2deg(), radius, mean_shape, mean_appearance),
                log,
            )
            if best is None or log[-1] < best[0]:
                best = (log[-1], angles.detach().clone(), radius.detach().clone(), log)
        assert best is not None  # at least one start
        _, angles, radius, losses["search"] = best
        angles.requires_grad_(True)
        radius.requires_grad_(True)
        shape = mean_shape.clone().requires_grad_(True)
        appearance = mean_appearance.clone().requires_grad_(True)
        pose = lambda: (angles[0].rad2deg(), angles[1].rad2deg(), radius)  # noqa: E731
        optimise(
            [angles, radius],
            cfg.lr_pose,
            cfg.pose_steps,
            lambda _: error(*pose(), mean_shape, mean_appearance),
            losses["pose"],
        )
        noise_generator = generator or torch.Generator().manual_seed(0)

        def noisy_shape(step: int) -> torch.Tensor:
            scale = cfg.noise * float(spread) * (1 - step / max(cfg.shape_steps, 1))
            noise = torch.randn(shape.shape, generator=noise_generator).to(device) * scale
            return error(*pose(), shape + noise, appearance)

        optimise([shape], cfg.lr_codes, cfg.shape_steps, noisy_shape, losses["shape"])
        optimise(
            [appearance],
            cfg.lr_codes,
            cfg.appearance_steps,
            lambda _: error(*pose(), shape, appearance),
            losses["appearance"],
        )
        with torch.no_grad():
            final = float(error(*pose(), shape, appearance))
            azimuth, elevation = angles.rad2deg().tolist()
        return Inversion(
            shape.detach(),
            appearance.detach(),
            azimuth,
            elevation,
            float(radius.detach()),
            losses,
            final,
            fov,
            tuple(center.tolist()),
        )
