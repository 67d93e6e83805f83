"""The photos of a capture: found, checked and copied into a dataset (``images/`` and the ``images_2/4/8``
copies), and prepared for feature matching (alpha composited, downscaled to the matching size)."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from langfield.atomic import write_image
from langfield.data.dataset import open_image
from langfield.errors import LangfieldError

#: the photo formats read from a capture folder
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
#: the downscaled copies nerfstudio datasets carry beside ``images/``
DOWNSCALES = (2, 4, 8)
MIN_IMAGES = 3


def natural_key(name: str) -> list:
    """Sort key that puts ``r_2`` before ``r_10`` (capture order, as cameras and video frames name files)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


@dataclass
class Photos:
    """The checked photos of a capture, in capture (natural name) order, all of one size."""

    paths: list[Path]
    width: int
    height: int

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.paths]


def find_photos(folder: Path) -> Photos:
    """The photos directly inside ``folder``: at least :data:`MIN_IMAGES`, each readable, all of one size."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LangfieldError(f"{folder}: no such folder of images")
    paths = sorted(
        (
            p
            for p in folder.iterdir()
            if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES and not p.name.startswith(".")
        ),
        key=lambda p: natural_key(p.name),
    )
    if not paths:
        raise LangfieldError(f"{folder}: no images found (looked for {', '.join(PHOTO_SUFFIXES)})")
    if len(paths) < MIN_IMAGES:
        raise LangfieldError(
            f"{folder}: {len(paths)} image(s) found, structure from motion needs at least {MIN_IMAGES}"
        )
    sizes: dict[tuple[int, int], list[Path]] = {}
    for path in paths:
        try:
            with open_image(path) as image:
                image.verify()  # reads the whole file: truncated or corrupt files fail here, not halfway through
                sizes.setdefault(image.size, []).append(path)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise LangfieldError(f"{path}: cannot read image ({reason})") from None
    if len(sizes) > 1:
        counted = sorted(sizes.items(), key=lambda item: -len(item[1]))
        listed = ", ".join(f"{len(p)} of {w}x{h} (e.g. {p[0].name})" for (w, h), p in counted)
        raise LangfieldError(f"{folder}: images of different sizes: {listed}; resize them to one size first")
    ((width, height),) = sizes
    return Photos(paths, width, height)


def read_rgba(path: Path) -> np.ndarray:
    """A photo as uint8 RGBA (H, W, 4); photos without alpha get an opaque channel, EXIF rotation is ignored
    (as COLMAP ignores it)."""
    with open_image(path) as image:
        image.load()
        return np.asarray(image.convert("RGBA"))


def on_white(rgba: np.ndarray) -> np.ndarray:
    """uint8 RGB of an RGBA array composited on white (transparent backgrounds give no features)."""
    alpha = rgba[..., 3:].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)
    return (rgb + 0.5).clip(0, 255).astype(np.uint8)


def matching_size(width: int, height: int, max_size: int) -> tuple[int, int]:
    """The size photos are matched at: the longer side at most ``max_size`` (0: the full size)."""
    longest = max(width, height)
    if max_size <= 0 or longest <= max_size:
        return width, height
    scale = max_size / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def write_matching_copies(photos: Photos, folder: Path, size: tuple[int, int]) -> None:
    """RGB PNGs of every photo at ``size`` (area filtered) for feature extraction, same names + ``.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in photos.paths:
        image = Image.fromarray(on_white(read_rgba(path)))
        if image.size != size:
            image = image.resize(size, Image.Resampling.BOX)
        image.save(folder / f"{path.name}.png")


def box_downscale(rgba: np.ndarray, factor: int) -> np.ndarray:
    """Area downscaling by an integer factor, premultiplied (as the dataset loader's ``--downscale``)."""
    h, w = rgba.shape[0] // factor, rgba.shape[1] // factor
    x = rgba[: h * factor, : w * factor].astype(np.float32) / 255.0
    x[..., :3] *= x[..., 3:]
    x = x.reshape(h, factor, w, factor, 4).mean(axis=(1, 3))
    x[..., :3] /= np.maximum(x[..., 3:], 1e-6)
    return (x * 255 + 0.5).clip(0, 255).astype(np.uint8)


def save_dataset_image(path: Path, rgba: np.ndarray) -> None:
    """RGBA as PNG (alpha kept where it is not opaque), RGB as JPEG or PNG after ``path``'s suffix."""
    opaque = bool((rgba[..., 3] == 255).all())
    image = Image.fromarray(rgba[..., :3] if opaque else rgba, "RGB" if opaque else "RGBA")
    write_image(path, image)


def write_dataset_image(out: Path, name: str, image: np.ndarray | Path) -> str:
    """``out/images/NAME`` (copied byte for byte when given as a path in a kept format) and its ``images_2/4/8``
    copies. Returns the file name written under ``images/`` (JPEG stays JPEG; anything else becomes PNG)."""
    suffix = Path(name).suffix.lower()
    target = name if suffix in (".png", ".jpg", ".jpeg") else f"{Path(name).stem}.png"
    (out / "images").mkdir(parents=True, exist_ok=True)
    rgba = read_rgba(image) if isinstance(image, Path) else image
    if isinstance(image, Path) and Path(target).suffix.lower() == suffix:
        shutil.copyfile(image, out / "images" / target)
    else:
        save_dataset_image(out / "images" / target, rgba)
    for factor in DOWNSCALES:
        if min(rgba.shape[:2]) // factor < 1:
            continue
        (out / f"images_{factor}").mkdir(parents=True, exist_ok=True)
        save_dataset_image(out / f"images_{factor}" / target, box_downscale(rgba, factor))
    return target
