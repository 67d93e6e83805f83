"""Structure from motion through pycolmap (COLMAP's own library, CPU wheels, no binary and no download):
SIFT features, matching (exhaustive or sequential), incremental mapping. Each stage reports its progress through
callbacks; COLMAP's own log shows only with ``verbose``."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from langfield.errors import LangfieldError

#: above this many photos, ``auto`` matching is sequential (exhaustive matching grows with the square)
EXHAUSTIVE_LIMIT = 200
#: models incremental mapping may start before it stops (the largest is kept)
MAX_MODELS = 8
#: images per feature-extraction call (the progress bar advances after each)
EXTRACTION_CHUNK = 8


def load_pycolmap():
    """The ``pycolmap`` module, imported after PIL's image core: pycolmap's wheel carries its own zlib, and when
    it is loaded first, PIL's PNG encoder binds to it and corrupts memory (a double free on the next PNG save)."""
    from PIL import Image  # noqa: F401  (loads PIL's _imaging, bound to its own zlib)

    try:
        import pycolmap
    except ImportError as exc:
        raise LangfieldError(f"langfield process needs pycolmap (pip install pycolmap): {exc}") from None
    return pycolmap


@dataclass
class Registration:
    """One registered image: its camera-to-world pose (OpenCV axes, COLMAP world) and pinhole-or-distorted
    camera at the matching size."""

    name: str
    cam_from_world: np.ndarray  # (3, 4)
    camera_id: int


@dataclass
class SparseModel:
    """What the mapping recovered: registered images, their cameras, the sparse points (xyz, uint8 rgb)."""

    images: list[Registration]
    cameras: dict  # camera id → pycolmap.Camera
    points: np.ndarray
    colors: np.ndarray
    mean_reprojection_error: float
    seconds: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def colmap_log(verbose: bool) -> Iterator[None]:
    """COLMAP's log on stderr while inside (verbose), otherwise nothing (failures come back as one line)."""
    pycolmap = load_pycolmap()

    previous = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = 0 if verbose else 3
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = previous


def choose_matcher(matcher: str, count: int, from_video: bool) -> str:
    """``auto``: sequential for video frames or more than :data:`EXHAUSTIVE_LIMIT` photos, else exhaustive."""
    if matcher != "auto":
        return matcher
    return "sequential" if from_video or count > EXHAUSTIVE_LIMIT else "exhaustive"


def extract_features(
    database: Path,
    image_dir: Path,
    names: list[str],
    camera_model: str,
    shared_intrinsics: bool,
    advance: Callable[[int], object] = lambda n: None,
    known: tuple[float, int, int] | None = None,
) -> None:
    """SIFT features of ``names`` (files in ``image_dir``) into ``database``, one camera for all images when
    ``shared_intrinsics``; ``known``: (focal length in pixels, width, height) of the images as matched, the
    principal point at the centre and no distortion to start from."""
    pycolmap = load_pycolmap()

    extraction = pycolmap.FeatureExtractionOptions()
    for start in range(0, len(names), EXTRACTION_CHUNK):
        chunk = names[start : start + EXTRACTION_CHUNK]
        reader = pycolmap.ImageReaderOptions()
        reader.camera_model = camera_model
        if known is not None:
            focal, width, height = known
            params = [focal, focal, width / 2, height / 2] + ([0.0] * 4 if camera_model == "OPENCV" else [])
            reader.camera_params = ",".join(f"{v:.6f}" for v in params)
        if shared_intrinsics and start > 0:
            reader.existing_camera_id = 1  # the camera the first chunk created
        pycolmap.extract_features(
            database,
            image_dir,
            image_names=chunk,
            camera_mode=pycolmap.CameraMode.SINGLE if shared_intrinsics else pycolmap.CameraMode.PER_IMAGE,
            reader_options=reader,
            extraction_options=extraction,
            device=pycolmap.Device.cpu,
        )
        advance(len(chunk))


def match_features(database: Path, matcher: str) -> None:
    pycolmap = load_pycolmap()

    options = pycolmap.FeatureMatchingOptions()
    if matcher == "exhaustive":
        pycolmap.match_exhaustive(database, matching_options=options, device=pycolmap.Device.cpu)
    elif matcher == "sequential":
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = 10
        pairing.quadratic_overlap = True
        pycolmap.match_sequential(
            database, matching_options=options, pairing_options=pairing, device=pycolmap.Device.cpu
        )
    else:
        raise LangfieldError(f"unknown matcher '{matcher}' (auto, exhaustive or sequential)")


def verified_pairs(database: Path, min_inliers: int = 15) -> int:
    """Image pairs whose geometric verification kept at least ``min_inliers`` matches (COLMAP's own minimum for
    mapping; 0: nothing can be registered)."""
    pycolmap = load_pycolmap()

    with contextlib.closing(pycolmap.Database.open(database)) as db:
        _, geometries = db.read_two_view_geometries()
        return sum(len(g.inlier_matches) >= min_inliers for g in geometries)


def incremental_mapping(
    database: Path,
    image_dir: Path,
    sparse_dir: Path,
    seed: int,
    advance: Callable[[], object] = lambda: None,
    fixed_focal: bool = False,
) -> SparseModel | None:
    """The largest model incremental mapping recovers (None when no model could be started); ``fixed_focal``
    keeps the focal length the cameras were given."""
    pycolmap = load_pycolmap()

    pycolmap.set_random_seed(seed)
    options = pycolmap.IncrementalPipelineOptions()
    # several models: when the first initial pair leads nowhere (a two-image model), COLMAP starts again from
    # another pair instead of stopping; the largest model is kept
    options.multiple_models = True
    options.max_num_models = MAX_MODELS
    if fixed_focal:
        options.ba_refine_focal_length = False
        options.mapper.abs_pose_refine_focal_length = False
    options.random_seed = seed
    sparse_dir.mkdir(parents=True, exist_ok=True)

    def on_image() -> None:
        advance()

    models = pycolmap.incremental_mapping(
        database, image_dir, sparse_dir, options=options, next_image_callback=on_image
    )
    if not models:
        return None
    reconstruction = max(models.values(), key=lambda r: r.num_reg_images())
    if reconstruction.num_reg_images() == 0:
        return None
    images = [
        Registration(image.name, np.asarray(image.cam_from_world().matrix(), dtype=np.float64), image.camera_id)
        for image in reconstruction.images.values()
        if image.has_pose
    ]
    points = reconstruction.points3D.values()
    xyz = np.array([p.xyz for p in points], dtype=np.float64).reshape(-1, 3)
    rgb = np.array([p.color for p in points], dtype=np.uint8).reshape(-1, 3)
    return SparseModel(
        images=images,
        cameras=dict(reconstruction.cameras.items()),
        points=xyz,
        colors=rgb,
        mean_reprojection_error=float(reconstruction.compute_mean_reprojection_error()),
    )
