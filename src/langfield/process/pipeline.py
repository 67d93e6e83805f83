"""``langfield process images|video``: photos or a video → a posed nerfstudio dataset.

Everything is built in a hidden folder beside ``--out`` and moved into place only when it is complete, so a
failure (bad input, nothing registers, Ctrl-C) leaves ``--out`` as it was."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from langfield.atomic import write_json
from langfield.errors import LangfieldError
from langfield.process.colmap import (
    SparseModel,
    choose_matcher,
    colmap_log,
    extract_features,
    incremental_mapping,
    load_pycolmap,
    match_features,
    verified_pairs,
)
from langfield.process.frames import count_frames, sharpest_frames
from langfield.process.inputs import (
    Photos,
    find_photos,
    matching_size,
    read_rgba,
    save_dataset_image,
    write_dataset_image,
    write_matching_copies,
)
from langfield.process.transforms import write_transforms
from langfield.ui import console, task_bar

REPORT = "process_report.json"


@dataclass
class ProcessOptions:
    """How a capture becomes a dataset."""

    matcher: Literal["auto", "exhaustive", "sequential"] = "auto"
    """Feature matching: `exhaustive` (every pair; small sets), `sequential` (neighbours in name order, with
    quadratic overlap; videos and long ordered captures), `auto`: sequential for videos and over 200 photos."""
    camera_model: Literal["OPENCV", "PINHOLE"] = "OPENCV"
    """OPENCV: pinhole with radial and tangential distortion, undistorted in the output; PINHOLE: no distortion."""
    shared_intrinsics: bool = True
    """One camera for every image (one phone or lens); off: intrinsics per image, written per frame."""
    matching_size: int = 1600
    """Longest side of the copies features are matched on (0: full size); the dataset keeps the full size."""
    focal_length: float = 0.0
    """The focal length in pixels of the full-size photos when known (kept fixed); 0: estimated. Self-calibration
    can fail on a plain orbit at one elevation (a critical motion: the focal length comes out wrong)."""
    seed: int = 0
    """Seed of COLMAP's random sampling (RANSAC, initial pair)."""
    verbose: bool = False
    """Show COLMAP's own log."""
    progress: bool = True


@dataclass
class ProcessReport:
    """What processing did; written as ``process_report.json`` beside ``transforms.json``."""

    source: str
    registered: int
    total: int
    dropped: list[str]
    """Images COLMAP could not register."""
    mean_reprojection_error_px: float
    points: int
    matcher: str
    camera_model: str
    image_size: tuple[int, int]
    matching_size: tuple[int, int]
    seconds: dict[str, float] = field(default_factory=dict)
    video_frames: int | None = None
    """Frames in the video (video captures only)."""
    frame_indices: list[int] | None = None
    """The video frame each ``frame_NNNNN`` image was taken from (0-based; video captures only)."""
    rejected: dict[str, str] = field(default_factory=dict)
    """Images registered with a camera no photo has (e.g. a negative focal length from per-image
    self-calibration), left out of the dataset: name → why. ``registered`` counts the images written."""

    def summary(self) -> str:
        lines = [
            f"registered {self.registered} of {self.total} images; mean reprojection error "
            f"{self.mean_reprojection_error_px:.3f} px; {self.points:,} sparse points",
            f"matched at {self.matching_size[0]}x{self.matching_size[1]} ({self.matcher}, {self.camera_model}); "
            + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()),
        ]
        if self.dropped:
            shown = ", ".join(self.dropped[:10]) + (
                f" and {len(self.dropped) - 10} more" if len(self.dropped) > 10 else ""
            )
            lines.append(f"dropped (not registered): {shown}")
        for name, why in list(self.rejected.items())[:10]:
            lines.append(f"left out {name}: {why}")
        if len(self.rejected) > 10:
            lines.append(f"left out {len(self.rejected) - 10} more for their cameras (process_report.json)")
        return "\n".join(lines)


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise LangfieldError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise LangfieldError(f"{out}: folder is not empty; pass --overwrite to replace it or choose another")


@contextlib.contextmanager
def _staging(out: Path, overwrite: bool):
    """A hidden folder beside ``out``, moved onto ``out`` when the block succeeds, removed when it fails."""
    _check_out(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _check_out(out, overwrite)  # nothing else wrote there meanwhile
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.replaced-{os.getpid()}"
        out.rename(old)
    stage.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class _Stopwatch:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 2)


def _say(options: ProcessOptions, message: str) -> None:
    if options.progress:
        console.print(message)


def _undistorted(rgba: np.ndarray, camera):
    """The image undistorted by COLMAP (alpha too) and its pinhole camera."""
    pycolmap = load_pycolmap()

    settings = pycolmap.UndistortCameraOptions()
    rgb, pinhole = pycolmap.undistort_image(
        settings, pycolmap.Bitmap.from_array(np.ascontiguousarray(rgba[..., :3])), camera
    )
    rgb = rgb.to_array()
    if (rgba[..., 3] == 255).all():
        alpha = np.full(rgb.shape[:2], 255, dtype=np.uint8)
    else:
        alpha, _ = pycolmap.undistort_image(
            settings, pycolmap.Bitmap.from_array(np.ascontiguousarray(rgba[..., 3])), camera
        )
        alpha = alpha.to_array()
    return np.concatenate([rgb.reshape(*rgb.shape[:2], 3), alpha.reshape(*rgb.shape[:2], 1)], axis=-1), pinhole


def _full_size_camera(camera, width: int, height: int):
    """A copy of a pycolmap camera at the matching size, rescaled to the photos' full size."""
    pycolmap = load_pycolmap()

    full = pycolmap.Camera(model=camera.model, width=camera.width, height=camera.height, params=camera.params)
    full.rescale(width, height)
    return full


def _reconstruct(photos: Photos, stage: Path, options: ProcessOptions, from_video: bool, watch: _Stopwatch):
    """Features, matches and the sparse model of ``photos`` (work files under ``stage/colmap``)."""
    work = stage / "colmap"
    match_dir = work / "matching_images"
    size = matching_size(photos.width, photos.height, options.matching_size)
    matcher = choose_matcher(options.matcher, len(photos.paths), from_video)
    with watch.stage("prepare"):
        write_matching_copies(photos, match_dir, size)
    names = [f"{n}.png" for n in photos.names]
    database = work / "database.db"
    with colmap_log(options.verbose):
        with watch.stage("features"), task_bar(f"features ({size[0]}x{size[1]})", len(names), options.progress) as bar:
            known = None
            if options.focal_length > 0:  # given at the photos' full size: scaled to the matching size
                known = (options.focal_length * size[0] / photos.width, size[0], size[1])
            extract_features(database, match_dir, names, options.camera_model, options.shared_intrinsics, bar, known)
        count = len(names)
        pairs = count * (count - 1) // 2 if matcher == "exhaustive" else None
        _say(options, f"matching: {matcher}" + (f", {pairs:,} pairs" if pairs else "") + " ...")
        with watch.stage("matching"):
            match_features(database, matcher)
        verified = verified_pairs(database)
        _say(options, f"  {verified:,} image pairs verified in {watch.seconds['matching']:.1f} s")
        if verified == 0:
            raise LangfieldError(
                f"no two of the {count} images could be matched: nothing can be registered (too little texture or "
                "overlap between the views?)"
            )
        with watch.stage("mapping"), task_bar("mapping (images registered)", count, options.progress) as bar:
            model = incremental_mapping(
                database, match_dir, work / "sparse", options.seed, bar, fixed_focal=options.focal_length > 0
            )
    if model is None:
        raise LangfieldError(
            f"no image could be registered (0 of {count}; {verified} pairs matched): COLMAP found no initial pair "
            "with enough inliers and parallax"
        )
    shutil.rmtree(match_dir, ignore_errors=True)
    return model, size, matcher


#: a registered camera whose focal length is this factor or more off the capture's median is left out
FOCAL_SPREAD = 4.0


def implausible_cameras(cameras: Mapping[int, Any], width: int, height: int) -> dict[int, str]:
    """Camera id → why, for the pinhole cameras no photo of ``width``×``height`` has: a focal length that is not a
    positive number or is ``FOCAL_SPREAD``× off the median of the others, or a principal point outside the image.
    Per-image self-calibration sometimes converges there; such a view would poison a dataset."""
    params = {cid: [float(v) for v in cam.params[:4]] for cid, cam in cameras.items()}
    sane = [min(fx, fy) for fx, fy, _, _ in params.values() if np.isfinite([fx, fy]).all() and min(fx, fy) > 0]
    median = float(np.median(sane)) if sane else 0.0
    bad = {}
    for cid, (fx, fy, cx, cy) in params.items():
        if not (np.isfinite([fx, fy, cx, cy]).all() and fx > 0 and fy > 0):
            bad[cid] = f"focal length ({fx:.4g}, {fy:.4g}) px is not positive"
        elif median > 0 and max(fx, fy, median) / min(fx, fy, median) >= FOCAL_SPREAD:
            bad[cid] = f"focal length {fx:.1f} px is {FOCAL_SPREAD:g}x or more off the capture's median {median:.1f} px"
        elif not (0 < cx < width and 0 < cy < height):
            bad[cid] = f"principal point ({cx:.1f}, {cy:.1f}) lies outside the {width}x{height} image"
    return bad


def _write_dataset(
    photos: Photos, stage: Path, model: SparseModel, options: ProcessOptions
) -> tuple[list[str], dict[str, str]]:
    """images/, images_N/, transforms.json, sparse_pc.ply for the registered images with plausible cameras.
    Returns the names not registered and those left out for their camera (name → why)."""
    by_name = {r.name.removesuffix(".png"): r for r in model.images}
    full_cameras = {cid: _full_size_camera(cam, photos.width, photos.height) for cid, cam in model.cameras.items()}
    bad = implausible_cameras(full_cameras, photos.width, photos.height)
    rejected = {
        p.name: bad[by_name[p.name].camera_id]
        for p in photos.paths
        if p.name in by_name and by_name[p.name].camera_id in bad
    }
    kept = [p for p in photos.paths if p.name in by_name and p.name not in rejected]
    if not kept:  # the model holds at least one image, so it is among the rejected
        name, why = next(iter(rejected.items()))
        raise LangfieldError(
            f"every registered image has an implausible camera ({name}: {why}); give the focal length "
            "with --sfm.focal-length or share one camera between the images"
        )
    undistort = options.camera_model != "PINHOLE"
    names, cams, poses = [], [], []
    with task_bar("writing images", len(kept), options.progress) as bar:
        for path in kept:
            registration = by_name[path.name]
            if undistort:
                rgba, camera = _undistorted(read_rgba(path), full_cameras[registration.camera_id])
                image: np.ndarray | Path = rgba
            else:
                image, camera = path, full_cameras[registration.camera_id]
            names.append(write_dataset_image(stage, path.name, image))
            cams.append(camera)
            poses.append(registration.cam_from_world)
            bar()
    write_transforms(stage, names, poses, cams, model.points, model.colors, options.shared_intrinsics)
    return [p.name for p in photos.paths if p.name not in by_name], rejected


def _process_into(
    photos: Photos,
    stage: Path,
    options: ProcessOptions,
    source: str,
    video_frames: int | None,
    start: float | None = None,
    frame_indices: list[int] | None = None,
) -> ProcessReport:
    watch = _Stopwatch()
    start = time.perf_counter() if start is None else start
    _say(options, f"{len(photos.paths)} images of {photos.width}x{photos.height} from {source}")
    model, size, matcher = _reconstruct(photos, stage, options, video_frames is not None, watch)
    if len(model.images) < 0.8 * len(photos.paths) and options.focal_length <= 0:
        _say(
            options,
            f"only {len(model.images)} of {len(photos.paths)} registered: if the views circle the scene at one "
            "height, the focal length cannot be estimated; give it with --sfm.focal-length",
        )
    with watch.stage("writing"):
        dropped, rejected = _write_dataset(photos, stage, model, options)
    watch.seconds["total"] = round(time.perf_counter() - start, 2)
    report = ProcessReport(
        source=source,
        registered=len(model.images) - len(rejected),
        total=len(photos.paths),
        dropped=dropped,
        mean_reprojection_error_px=round(model.mean_reprojection_error, 4),
        points=len(model.points),
        matcher=matcher,
        camera_model=options.camera_model,
        image_size=(photos.width, photos.height),
        matching_size=size,
        seconds=watch.seconds,
        video_frames=video_frames,
        frame_indices=frame_indices,
        rejected=rejected,
    )
    write_json(stage / REPORT, asdict(report))
    return report


def process_images(
    folder: Path, out: Path, options: ProcessOptions | None = None, overwrite: bool = False
) -> ProcessReport:
    """Posed nerfstudio dataset in ``out`` from the photos in ``folder`` (Python API of ``process images``)."""
    options = options or ProcessOptions()
    _check_out(Path(out), overwrite)
    photos = find_photos(Path(folder))
    with _staging(Path(out), overwrite) as stage:
        return _process_into(photos, stage, options, str(folder), None)


def process_video(
    video: Path, out: Path, frames: int = 100, options: ProcessOptions | None = None, overwrite: bool = False
) -> ProcessReport:
    """Posed nerfstudio dataset in ``out`` from the sharpest frame of each of ``frames`` windows of ``video``."""
    options = options or ProcessOptions()
    out = Path(out)
    _check_out(out, overwrite)
    start = time.perf_counter()
    with _staging(out, overwrite) as stage:
        if not Path(video).is_file():
            raise LangfieldError(f"{video}: no such video file")
        total = count_frames(Path(video))
        with task_bar("reading video (sharpest frames)", max(total, 1), options.progress) as bar:
            chosen, indices, total = sharpest_frames(Path(video), frames, bar, total)
        if len(chosen) < 3:
            raise LangfieldError(f"{video}: {len(chosen)} frame(s) decoded, structure from motion needs at least 3")
        folder = stage / "colmap" / "video_frames"
        folder.mkdir(parents=True)
        for i, frame in enumerate(chosen):
            save_dataset_image(
                folder / f"frame_{i + 1:05d}.png",
                np.concatenate([frame, np.full((*frame.shape[:2], 1), 255, np.uint8)], axis=-1),
            )
        photos = find_photos(folder)
        report = _process_into(photos, stage, options, str(video), total, start, indices)
        shutil.rmtree(folder, ignore_errors=True)
        return report
