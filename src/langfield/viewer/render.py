"""Drawing one view for the browser: rays rendered chunk by chunk, so that a moving camera cuts a frame short."""

from __future__ import annotations

from typing import Callable

import torch

from langfield.cameras import Cameras


class Cancelled(Exception):
    """The camera moved while a frame was being drawn: the frame is dropped."""


def render_view(model, camera: Cameras, cancelled: Callable[[], bool] = lambda: False) -> dict[str, torch.Tensor]:
    """``rgb`` (H, W, 3), ``opacity`` and ``depth`` (H, W) of the single camera ``camera`` (float32, on the CPU).
    Raises :class:`Cancelled` when ``cancelled()`` is true between two chunks of rays."""

    def check() -> None:
        if cancelled():
            raise Cancelled

    rendered = model.render_camera(camera, 0, before_chunk=check)
    return {key: value.float().cpu() for key, value in rendered.items()}
