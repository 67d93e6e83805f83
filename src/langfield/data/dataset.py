"""The dataset type every parser produces, and the image helpers they share."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from langfield.cameras import Cameras
from langfield.errors import LangfieldError
from langfield.resources import require_memory

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG", ".exr", ".webp")


@dataclass
class Dataset:
    """Posed images of one scene.

    ``images`` holds premultiplied RGB plus alpha, float16, ``(N, H, W, 4)``; images without alpha have alpha 1.
    ``rgb(i)`` composites image ``i`` on ``background``. ``aabb`` (2, 3) bounds the scene; ``near``/``far`` bound
    the depth of every ray.
    """

    images: torch.Tensor
    cameras: Cameras
    train_indices: list[int]
    test_indices: list[int]
    background: torch.Tensor
    aabb: torch.Tensor
    near: float
    far: float
    has_alpha: bool
    source: Path
    format: str
    filenames: list[str] = field(default_factory=list)
    #: which object each view shows (datasets of a category, one object per view: per-frame ``object_index``)
    objects: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if len(self.images) == 0:
            raise LangfieldError(f"{self.source}: the dataset has no images")
        if not self.train_indices:
            raise LangfieldError(f"{self.source}: no training views (check the split options)")
        if self.objects is not None and self.objects.shape != (len(self.images),):
            raise LangfieldError(f"{self.source}: {len(self.objects)} object indices for {len(self.images)} views")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def height(self) -> int:
        return self.images.shape[1]

    @property
    def width(self) -> int:
        return self.images.shape[2]

    def rgb(self, index: int) -> torch.Tensor:
        """Image ``index`` composited on the background, float32 ``(H, W, 3)`` in [0, 1]."""
        image = self.images[index].float()
        return image[..., :3] + (1.0 - image[..., 3:]) * self.background

    def summary(self) -> str:
        train = len(self.train_indices)
        ids = f" (views {', '.join(map(str, self.train_indices))})" if train <= 16 else ""
        return (
            f"{self.format} dataset {self.source}: {len(self)} views of {self.width}x{self.height}, "
            f"{train} train{ids} / {len(self.test_indices)} held out"
        )


def frame_object(frame: dict, where: str) -> int | None:
    """A frame's optional ``object_index`` (which object of a category dataset it shows)."""
    value = frame.get("object_index")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise LangfieldError(f"{where}: 'object_index' must be a non-negative integer, got {value!r}")
    return value


def object_indices(values: list[int | None], source: str) -> torch.Tensor | None:
    """The frames' object indices as a tensor; None when no frame has one."""
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        raise LangfieldError(f"{source}: 'object_index' is given on some frames but not on all")
    return torch.tensor(values, dtype=torch.long)


def holdout_split(count: int, every: int) -> tuple[list[int], list[int]]:
    """Views with index ``i % every == 0`` are held out; ``every <= 0`` holds out none."""
    if every <= 0:
        return list(range(count)), []
    test = [i for i in range(count) if i % every == 0]
    train = [i for i in range(count) if i % every != 0]
    return train, test


def parse_view_ids(values) -> list[int]:
    """View indices from ``(2, 15)``, ``("2,15",)`` or ``("2", "15")``: one-line errors for anything else."""
    words = [w for value in values for w in str(value).replace(",", " ").split()]
    if not words:
        raise LangfieldError("--view-ids is empty")
    try:
        return [int(w) for w in words]
    except ValueError:
        raise LangfieldError(
            f"--view-ids must be view indices such as 2,15,30, got {' '.join(map(str, values))!r}"
        ) from None


def choose_views(train: list[int], count: int | None, ids, seed: int, total: int) -> list[int]:
    """The few-shot training views: ``ids`` as given (see :func:`parse_view_ids`), or ``count`` views drawn without
    replacement (seeded) among ``train``; ``train`` itself when neither is given. Sorted."""
    if count is not None and ids is not None:
        raise LangfieldError("give --num-views or --view-ids, not both")
    if ids is not None:
        ids = parse_view_ids(ids)
        allowed = set(train)
        for i in ids:
            if not 0 <= i < total:
                raise LangfieldError(
                    f"--view-ids: view {i} does not exist (the dataset has {total} views, 0..{total - 1})"
                )
            if i not in allowed:
                raise LangfieldError(f"--view-ids: view {i} is a held-out view, not a training view")
        if len(set(ids)) != len(ids):
            raise LangfieldError(f"--view-ids: a view is listed twice in {list(ids)}")
        return sorted(ids)
    if count is None:
        return train
    if not 1 <= count <= len(train):
        raise LangfieldError(f"--num-views must be between 1 and the {len(train)} training views, got {count}")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    return sorted(train[int(i)] for i in order[:count])


#: the longest file path accepted from a dataset file, and the longest name of one of its parts (POSIX limits)
MAX_PATH, MAX_NAME = 4096, 255
#: the most pixels one image may have (PIL's own bomb limit, about 89 million)
MAX_PIXELS = 89_478_485


def resolve_image(path: Path) -> Path:
    """``path`` itself, or with an image extension added (Blender frames omit it)."""
    try:
        if path.is_file():
            return path
        for ext in IMAGE_EXTENSIONS:
            candidate = path.with_name(path.name + ext)
            if candidate.is_file():
                return candidate
    except (OSError, ValueError) as exc:
        raise LangfieldError(f"image not found: {path} ({exc})") from None
    raise LangfieldError(f"image not found: {path}")


def frame_image(folder: Path, file_path: str, where: str, allow_outside: bool = False) -> Path:
    """The image a frame's ``file_path`` names, relative to ``folder``. A path that leaves the dataset folder
    (``..``, absolute) is refused unless ``allow_outside``; so is one that is too long or holds a NUL byte."""
    if "\x00" in file_path:
        raise LangfieldError(f"{where}: 'file_path' contains a NUL byte")
    if len(file_path) > MAX_PATH or any(len(part) > MAX_NAME for part in file_path.split("/")):
        raise LangfieldError(f"{where}: 'file_path' is too long ({len(file_path)} characters)")
    if not file_path.strip():
        raise LangfieldError(f"{where}: 'file_path' is empty")
    candidate = Path(folder) / file_path
    inside = os.path.normpath(candidate)
    root = os.path.normpath(folder)
    if not allow_outside and os.path.commonpath([os.path.abspath(inside), os.path.abspath(root)]) != os.path.abspath(
        root
    ):
        raise LangfieldError(
            f"{where}: 'file_path' {file_path!r} points outside the dataset folder {folder}; pass --allow-outside to "
            "read it"
        )
    try:
        return resolve_image(candidate)
    except LangfieldError:
        raise LangfieldError(f"{where}: image not found: {candidate}") from None


def open_image(path: Path):
    """A lazily opened PIL image, refused before decoding when it has more pixels than :data:`MAX_PIXELS`."""
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise LangfieldError(f"{path}: refused, more than {MAX_PIXELS:,} pixels (a decompression bomb?)") from None
    w, h = image.size
    if w * h > MAX_PIXELS:
        image.close()
        raise LangfieldError(f"{path}: refused, {w}x{h} is more than {MAX_PIXELS:,} pixels (a decompression bomb?)")
    return image


def _decode(path: Path) -> np.ndarray:
    """Premultiplied RGBA float32 (H, W, 4) of an image file; any mode (grey, palette, 16-bit) is converted."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open_image(path) as image:
            image.load()
            mode_has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
            image = image.convert("RGBA" if mode_has_alpha else "RGB")
            array = np.asarray(image, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise LangfieldError(
            f"{path}: cannot read image ({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})"
        ) from None
    if array.shape[-1] == 3:
        array = np.concatenate([array, np.ones_like(array[..., :1])], axis=-1)
    array[..., :3] *= array[..., 3:]  # premultiply so that filtering and compositing commute
    return array


def _load_one(path: Path, downscale: int) -> np.ndarray:
    array = _decode(path)
    if downscale > 1:
        h, w = array.shape[0] // downscale, array.shape[1] // downscale
        if h == 0 or w == 0:
            raise LangfieldError(
                f"{path}: --downscale {downscale} leaves no pixels of a {array.shape[1]}x{array.shape[0]} image"
            )
        array = array[: h * downscale, : w * downscale]
        array = array.reshape(h, downscale, w, downscale, 4).mean(axis=(1, 3))
    return array


def load_images(paths: list[Path], downscale: int) -> tuple[torch.Tensor, bool]:
    """Read images in parallel, area-downscaled, into one preallocated float16 buffer; all must share one size.

    Returns premultiplied RGBA float16 ``(N, H, W, 4)`` and whether any image had an alpha channel.
    """
    if downscale < 1:
        raise LangfieldError(f"--downscale must be a positive integer, got {downscale}")
    first = _load_one(paths[0], downscale)
    h, w = first.shape[:2]
    require_memory(len(paths) * h * w * 4 * 2, f"{len(paths)} images of {w}x{h}", "use --downscale or --max-views")
    images = torch.empty((len(paths), h, w, 4), dtype=torch.float16)
    has_alpha = [False] * len(paths)

    def fill(i: int) -> None:
        array = first if i == 0 else _load_one(paths[i], downscale)
        if array.shape != first.shape:
            raise LangfieldError(
                f"{paths[i]}: image size {array.shape[1]}x{array.shape[0]} differs from {w}x{h} "
                f"of {paths[0].name} (after --downscale {downscale})"
            )
        images[i] = torch.from_numpy(array)
        has_alpha[i] = float(array[..., 3].min()) < 1.0

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(fill, range(len(paths))))
    return images, any(has_alpha)


def _matrix(value, where: str) -> np.ndarray:
    """A JSON matrix as float64; ragged, non-numeric or overflowing values are one line."""
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        raise LangfieldError(f"{where}: transform_matrix must be a list of rows of numbers")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for row in value for v in row):
        raise LangfieldError(f"{where}: transform_matrix must hold numbers only")
    if len({len(row) for row in value}) > 1:
        raise LangfieldError(f"{where}: transform_matrix has rows of different lengths")
    try:
        return np.asarray(value, dtype=np.float64)
    except (OverflowError, ValueError):
        raise LangfieldError(f"{where}: transform_matrix has a number too large") from None


def check_pose(matrix: np.ndarray, where: str) -> np.ndarray:
    """A 3×4 camera-to-world matrix from a 4×4 or 3×4 array; non-finite or non-rigid poses are errors."""
    matrix = matrix.astype(np.float64) if isinstance(matrix, np.ndarray) else _matrix(matrix, where)
    if matrix.shape not in ((4, 4), (3, 4)):
        raise LangfieldError(f"{where}: transform_matrix must be 4x4, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise LangfieldError(f"{where}: transform_matrix has non-finite values")
    rotation = matrix[:3, :3]
    with np.errstate(all="ignore"):  # huge entries overflow to inf: not orthonormal, reported below
        rigid = np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-2) and np.linalg.det(rotation) > 0
    if not rigid:
        raise LangfieldError(f"{where}: transform_matrix is not a rigid transform (rotation is not orthonormal)")
    return matrix[:3, :4]


def frustum_aabb(cameras: Cameras, near: float, far: float) -> torch.Tensor:
    """The box around every camera's view frustum between ``near`` and ``far``."""
    w, h = cameras.width, cameras.height
    corners_u = torch.tensor([0.0, w, 0.0, w], dtype=cameras.c2w.dtype)
    corners_v = torch.tensor([0.0, 0.0, h, h], dtype=cameras.c2w.dtype)
    points = []
    for i in range(len(cameras)):
        idx = torch.full((4,), i, dtype=torch.long)
        origins, dirs = cameras.generate_rays(idx, corners_u, corners_v)
        # generate_rays gives unit directions; scale so that depth (along -z) equals near/far
        forward = -cameras.c2w[i, :, 2]
        cos = (dirs @ forward).clamp_min(1e-6)[:, None]
        points += [origins + dirs * near / cos, origins + dirs * far / cos]
    points = torch.cat(points)
    return torch.stack([points.min(dim=0).values, points.max(dim=0).values])


def near_far(cameras: Cameras, aabb: torch.Tensor) -> dict[str, float]:
    """Depth bounds that cover the scene box from every camera: ``{"near": ..., "far": ...}``."""
    origins = cameras.origins
    outside = (aabb[0] - origins).clamp_min(0) + (origins - aabb[1]).clamp_min(0)
    near = float(outside.norm(dim=-1).min())
    corners = torch.stack(torch.meshgrid(*[aabb[:, k] for k in range(3)], indexing="ij"), -1).reshape(-1, 3)
    far = float(torch.cdist(origins, corners).max())
    return {"near": max(0.05, 0.9 * near), "far": far}
