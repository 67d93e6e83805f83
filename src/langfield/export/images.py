"""PNG images and MP4 videos."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from langfield.atomic import atomic_path, atomic_write, write_image
from langfield.errors import LangfieldError, one_line


def to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """8-bit pixels of an image: floats in [0, 1] are scaled (and clipped); 8-bit images pass as they are."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        if image.dtype == torch.uint8:
            return image.numpy()
        array = image.float().numpy()
    else:
        if np.asarray(image).dtype == np.uint8:
            return np.asarray(image)
        array = np.asarray(image, dtype=np.float32)
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_png(path: Path, image: torch.Tensor | np.ndarray) -> None:
    """An image as PNG, written atomically: float pixels in [0, 1], or 8-bit pixels as they are."""
    from PIL import Image

    write_image(path, Image.fromarray(to_uint8(image)))


def save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_write(path, "wb") as handle:
        np.save(handle, array)


def read_image(path: Path, max_side: int | None = None) -> torch.Tensor:
    """An image file as float RGB (H, W, 3) in [0, 1], transparent pixels over white (grayscale, palette and RGBA
    converted); with ``max_side``, a larger image is shrunk (antialiased) so its longer side is at most that;
    one-line errors."""
    from PIL import Image, UnidentifiedImageError

    from langfield.data.dataset import open_image

    path = Path(path)
    if not path.is_file():
        raise LangfieldError(f"image not found: {path}")
    try:
        with open_image(path) as image:  # refuses decompression bombs before decoding
            image = image.convert("RGBA")
            if max_side is not None and max(image.size) > max_side:
                image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            rgba = np.asarray(image, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise LangfieldError(f"{path}: not a readable image ({reason})") from None
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


#: what a render can be shown as (``langfield render --output``, the viewer's "Output")
CHANNELS = ("rgb", "depth", "opacity")


def channel_image(rendered: dict[str, torch.Tensor], channel: str, near: float, far: float) -> torch.Tensor:
    """The ``channel`` of a render (``rgb``, ``opacity``, ``depth`` as :meth:`Model.render_camera` gives them) as an
    RGB image (H, W, 3): depth colour-mapped from ``near`` to ``far`` and black where nothing is hit, opacity grey."""
    if channel == "rgb":
        return rendered["rgb"]
    if channel == "depth":
        return colorize(rendered["depth"], lo=near, hi=far) * rendered["opacity"][..., None]
    if channel == "opacity":
        return rendered["opacity"][..., None].expand(-1, -1, 3)
    raise ValueError(f"unknown channel {channel!r} (one of {', '.join(CHANNELS)})")


def write_video(path: Path, frames: Iterable[np.ndarray], fps: int = 30) -> int:
    """Encode uint8 frames (H, W, 3) as H.264 MP4, streamed: each frame goes to the encoder as it comes (pass a
    generator to render and encode one frame at a time), into a temporary file that replaces ``path`` at the end.
    Returns the number of frames."""
    import imageio.v2 as imageio

    path = Path(path)

    def fail(exc: Exception) -> LangfieldError:  # the ffmpeg backend reports failures with many exception types
        return LangfieldError(f"{path}: cannot write video ({one_line(exc)})")

    count = 0
    with atomic_path(path, keep_suffix=True) as tmp:
        try:
            writer = imageio.get_writer(
                tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=8, macro_block_size=1
            )
        except Exception as exc:
            raise fail(exc) from None
        try:
            for frame in frames:
                h, w = frame.shape[:2]
                try:  # even sizes keep the H.264 encoder happy
                    writer.append_data(np.ascontiguousarray(frame[: h - h % 2, : w - w % 2]))
                except Exception as exc:
                    raise fail(exc) from None
                count += 1
        except BaseException:
            with contextlib.suppress(Exception):
                writer.close()
            raise
        try:
            writer.close()
        except Exception as exc:
            raise fail(exc) from None
        if count == 0:
            raise LangfieldError(f"{path}: no frames to write")
    return count
