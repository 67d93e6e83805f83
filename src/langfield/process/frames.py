"""Frames of a video for structure from motion: decoded with imageio-ffmpeg, the video cut into ``count`` equal
windows of frames, and in each window the sharpest frame kept (the variance of the Laplacian: motion blur and
defocus lower it), so blurred frames are skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from langfield.errors import LangfieldError


def sharpness(rgb: np.ndarray) -> float:
    """The variance of the Laplacian of the grey image (higher: sharper)."""
    grey = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    laplacian = grey[1:-1, :-2] + grey[1:-1, 2:] + grey[:-2, 1:-1] + grey[2:, 1:-1] - 4 * grey[1:-1, 1:-1]
    return float(laplacian.var())


def _reason(exc: BaseException) -> str:
    """The line of an ffmpeg failure that says what went wrong (its last), shortened."""
    text = str(exc).strip()
    return text.splitlines()[-1][:160] if text else type(exc).__name__


def _reader(path: Path):
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    try:
        meta = next(reader)
    except (RuntimeError, OSError, StopIteration) as exc:
        raise LangfieldError(f"{path}: cannot decode video ({_reason(exc)})") from None
    return reader, meta


def count_frames(path: Path) -> int:
    import imageio_ffmpeg

    try:
        frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    except (RuntimeError, OSError, ValueError) as exc:
        raise LangfieldError(f"{path}: cannot decode video ({_reason(exc)})") from None
    return int(frames or 0)


def sharpest_frames(
    path: Path, count: int, advance=lambda n=1: None, total: int | None = None
) -> tuple[list[np.ndarray], list[int], int]:
    """The sharpest frame of each of ``count`` equal windows of the video at ``path``: (frames as uint8 RGB,
    their frame indices, the number of frames in the video). A video with fewer frames gives all of them.
    ``total``: the video's frame count when already known (:func:`count_frames`)."""
    path = Path(path)
    if not path.is_file():
        raise LangfieldError(f"{path}: no such video file")
    if count < 1:
        raise LangfieldError(f"--frames must be at least 1, got {count}")
    total = count_frames(path) if total is None else total
    if total < 1:
        raise LangfieldError(f"{path}: cannot decode video (no frames found)")
    windows = min(count, total)
    reader, meta = _reader(path)
    width, height = meta["size"]
    best: list[tuple[float, int, np.ndarray] | None] = [None] * windows
    index = -1
    try:
        for index, raw in enumerate(reader):
            if index >= total:
                break
            frame = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
            window = min(index * windows // total, windows - 1)
            score = sharpness(frame)
            current = best[window]
            if current is None or score > current[0]:
                best[window] = (score, index, frame.copy())
            advance()
    except (RuntimeError, OSError) as exc:
        raise LangfieldError(f"{path}: cannot decode video at frame {index + 1} ({_reason(exc)})") from None
    finally:
        reader.close()
    kept = [b for b in best if b is not None]
    if not kept:
        raise LangfieldError(f"{path}: cannot decode video (no frames could be read)")
    return [b[2] for b in kept], [b[1] for b in kept], total
