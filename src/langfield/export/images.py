"""PNG images and MP4 videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from langfield.errors import LangfieldError


def to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    array = image.detach().cpu().float().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, dtype=np.float32)
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_png(path: Path, image: torch.Tensor | np.ndarray) -> None:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(image)).save(path)


def read_image(path: Path) -> torch.Tensor:
    """An image file as float RGB (H, W, 3) in [0, 1], transparent pixels over white; one-line errors."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise LangfieldError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            image = image.convert("RGBA")
            rgba = np.asarray(image, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as error:
        raise LangfieldError(f"{path}: not a readable image ({error})") from error
    rgb, alpha = rgba[..., :3], rgba[..., 3:]
    return torch.from_numpy(rgb * alpha + (1.0 - alpha))  # transparent pixels over white, as the world renders


def colorize(values: torch.Tensor, lo: float | None = None, hi: float | None = None) -> torch.Tensor:
    """A scalar map (H, W) as an RGB image with the 'turbo'-like colour ramp (for depth and relevancy)."""
    v = values.float()
    lo = float(v.min()) if lo is None else lo
    hi = float(v.max()) if hi is None else hi
    t = ((v - lo) / max(hi - lo, 1e-9)).clamp(0, 1)
    # a compact polynomial approximation of the turbo colour map
    r = 0.1357 + t * (4.5974 - t * (42.3277 - t * (130.5887 - t * (150.5666 - t * 58.1375))))
    g = 0.0914 + t * (2.1856 + t * (4.8052 - t * (14.0195 - t * (4.2109 + t * 2.7747))))
    b = 0.1067 + t * (12.5925 - t * (60.1097 - t * (109.0745 - t * (88.5066 - t * 26.8183))))
    return torch.stack([r, g, b], dim=-1).clamp(0, 1)


def write_video(path: Path, frames: list[np.ndarray], fps: int = 30) -> None:
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # even sizes keep the H.264 encoder happy
        h, w = frames[0].shape[:2]
        frames = [f[: h - h % 2, : w - w % 2] for f in frames]
        imageio.mimwrite(path, frames, fps=fps, codec="libx264", quality=8, macro_block_size=1)
    except Exception as exc:  # the ffmpeg backend reports failures with many exception types
        raise LangfieldError(f"{path}: cannot write video ({exc})") from None
