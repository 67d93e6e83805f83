"""``langfield process images|video``: a posed nerfstudio dataset from your own photos or video (COLMAP through
pycolmap)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import tyro

from langfield.checks import SEED, at_least
from langfield.cli.parsing import parse
from langfield.errors import LangfieldError


@dataclass
class Sfm:
    """Structure-from-motion options."""

    matcher: Literal["auto", "exhaustive", "sequential"] = "auto"
    """exhaustive: every pair (small sets); sequential: neighbours in name order (videos, long ordered captures);
    auto: sequential for videos and over 200 photos, else exhaustive."""
    camera_model: Literal["OPENCV", "PINHOLE"] = "OPENCV"
    """OPENCV: radial + tangential distortion, undistorted in the output; PINHOLE: no distortion."""
    shared_intrinsics: bool = True
    """One camera for every image; --no-shared-intrinsics: per-image intrinsics, written per frame."""
    matching_size: Annotated[int, at_least(0)] = 1600
    """Longest side of the copies features are matched on (0: full size); the dataset keeps the full size."""
    focal_length: Annotated[float, at_least(0)] = 0.0
    """Focal length in pixels of the full-size photos or frames, when known (kept fixed); 0: estimated. A plain
    orbit at one elevation can leave it undetermined (self-calibration fails; the poses come out wrong)."""
    seed: Annotated[int, SEED] = 0


@dataclass
class ImagesArgs:
    """Photos in a folder → a posed nerfstudio dataset (transforms.json, images/, images_2/4/8, sparse_pc.ply)."""

    folder: tyro.conf.Positional[Path]
    out: Path
    sfm: Sfm = field(default_factory=Sfm)
    verbose: bool = False
    """Show COLMAP's own log."""
    overwrite: bool = False
    """Replace a non-empty --out."""


@dataclass
class VideoArgs:
    """A video → the sharpest frame of each of --frames windows → a posed nerfstudio dataset."""

    video: tyro.conf.Positional[Path]
    out: Path
    frames: Annotated[int, at_least(3)] = 100
    """Frames to keep: the video is cut into this many equal windows, and the sharpest frame of each is kept."""
    sfm: Sfm = field(default_factory=Sfm)
    verbose: bool = False
    overwrite: bool = False


USAGE = """usage: langfield process images|video [OPTIONS]

  images FOLDER --out DATA        photos (PNG/JPEG, one size) -> posed nerfstudio dataset
  video FILE --out DATA [--frames N]   a video's sharpest frames -> posed nerfstudio dataset

then: langfield train nerf --data DATA --output RUN"""


def _options(sfm: Sfm, verbose: bool):
    from langfield.process import ProcessOptions

    return ProcessOptions(
        matcher=sfm.matcher,
        camera_model=sfm.camera_model,
        shared_intrinsics=sfm.shared_intrinsics,
        matching_size=sfm.matching_size,
        focal_length=sfm.focal_length,
        seed=sfm.seed,
        verbose=verbose,
    )


def process(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return
    sub, rest = argv[0], argv[1:]
    if sub == "images":
        args = parse(ImagesArgs, rest, "langfield process images")
        from langfield.process import process_images

        report = process_images(args.folder, args.out, _options(args.sfm, args.verbose), args.overwrite)
    elif sub == "video":
        args = parse(VideoArgs, rest, "langfield process video")
        from langfield.process import process_video

        report = process_video(args.video, args.out, args.frames, _options(args.sfm, args.verbose), args.overwrite)
    else:
        raise LangfieldError(f"unknown process command '{sub}' (images or video)")
    from langfield.ui import console

    console.print(report.summary())
    console.print(f"wrote {args.out} (transforms.json, images/, sparse_pc.ply, process_report.json)")
