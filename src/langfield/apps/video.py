"""Rendering camera paths of a run to videos or frames, one frame at a time (a video streams to the encoder)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from langfield.cameras import orbit_path, spiral_path
from langfield.export.images import channel_image, save_png, to_uint8, write_video
from langfield.run import load_run
from langfield.ui import task_bar


def render_path(
    run_path: Path,
    out: Path,
    path: str = "orbit",
    frames: int = 60,
    fps: int = 24,
    output: str = "rgb",
    scale: float = 1.0,
    elevation: float | None = None,
    radius: float | None = None,
    device: str = "auto",
) -> Path:
    """Render ``frames`` views of the run along ``path`` (orbit, spiral or the training cameras) as an MP4 when
    ``out`` ends in .mp4, else as PNG frames in the folder ``out``. Returns ``out``."""
    run = load_run(run_path, device)
    reference = run.scene.cameras.scaled(scale)
    aabb = getattr(run.model, "aabb", run.scene.aabb).detach().cpu()
    if path == "orbit":
        cameras = orbit_path(reference, frames, center=aabb.mean(dim=0), radius=radius, elevation_deg=elevation)
    elif path == "spiral":
        cameras = spiral_path(reference, frames)
    else:
        cameras = reference

    def images(advance) -> Iterator[np.ndarray]:
        for i in range(len(cameras)):
            rendered = run.model.render_camera(cameras, i)
            yield to_uint8(channel_image(rendered, output, run.scene.near, run.scene.far).cpu())
            advance()

    out = Path(out)
    with task_bar("rendering", len(cameras)) as advance:
        if is_video(out):
            write_video(out, images(advance), fps)
        else:
            out.mkdir(parents=True, exist_ok=True)
            for i, frame in enumerate(images(advance)):
                save_png(out / f"frame_{i:04d}.png", frame)
    return out


def is_video(out: Path | str) -> bool:
    return Path(out).suffix.lower() == ".mp4" and not str(out).endswith("/")
