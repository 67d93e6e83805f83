"""Drawing one view for the browser: rays rendered chunk by chunk (so a moving camera can cut a frame short) and the
chosen output channel as an 8-bit picture."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from langfield.cameras import Cameras
from langfield.export.images import colorize, to_uint8

CHANNELS = ("rgb", "depth", "opacity")


class Cancelled(Exception):
    """The camera moved while a frame was being drawn: the frame is dropped."""


@torch.no_grad()
def render_view(
    model, camera: Cameras, cancelled: Callable[[], bool] = lambda: False, chunk: int | None = None
) -> dict[str, torch.Tensor]:
    """``rgb`` (H, W, 3), ``opacity`` and ``depth`` (H, W) of the single camera ``camera``, in evaluation mode
    (the model's mode is restored after). Raises :class:`Cancelled` when ``cancelled()`` is true between chunks."""
    chunk = chunk or model.render_chunk
    h, w = camera.height, camera.width
    was_training = model.training
    model.eval()
    try:
        origins, directions = camera.to(model.background.device).image_rays(0)
        parts: dict[str, list[torch.Tensor]] = {"rgb": [], "opacity": [], "depth": []}
        for start in range(0, origins.shape[0], chunk):
            if cancelled():
                raise Cancelled
            out = model(origins[start : start + chunk], directions[start : start + chunk])
            for key, values in parts.items():
                values.append(out[key].float())
    finally:
        model.train(was_training)
    return {key: torch.cat(values).reshape(h, w, -1).squeeze(-1).cpu() for key, values in parts.items()}


def picture(rendered: dict[str, torch.Tensor], channel: str, near: float, far: float) -> np.ndarray:
    """The ``channel`` (rgb, depth or opacity) of a render as a uint8 (H, W, 3) image; depth is colour-mapped from
    ``near`` (blue) to ``far`` (red) and black where nothing is hit."""
    if channel == "rgb":
        image = rendered["rgb"]
    elif channel == "depth":
        image = colorize(rendered["depth"], lo=near, hi=far) * rendered["opacity"][..., None].clamp(0, 1)
    elif channel == "opacity":
        image = rendered["opacity"][..., None].clamp(0, 1).expand(-1, -1, 3)
    else:
        raise ValueError(f"unknown channel {channel!r} (one of {', '.join(CHANNELS)})")
    return to_uint8(image)
