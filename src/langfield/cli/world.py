"""``langfield world scene|images``: datasets and labelled images from the procedural world."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Optional, Tuple

import tyro

from langfield.atomic import fresh_folder
from langfield.checks import ELEVATION, NON_NEGATIVE, SEED, at_least
from langfield.cli.parsing import parse
from langfield.errors import LangfieldError


@dataclass
class SceneArgs:
    """Write a multi-view dataset of a random table-top scene (Blender format + masks/ + objects.json)."""

    out: Path
    seed: Annotated[int, SEED] = 0
    objects: Annotated[int, at_least(1)] = 6
    views: Annotated[int, at_least(2)] = 100
    resolution: Annotated[int, at_least(8)] = 100
    holdout_every: Annotated[int, NON_NEGATIVE] = 8
    """Views with index i % N == 0 go to transforms_test.json."""
    background: Literal["white", "black", "grey"] = "white"
    supersample: Annotated[int, at_least(1)] = 2
    """Render SxS samples per pixel and box-filter them (anti-aliasing, as a camera integrates over a pixel)."""
    kinds: Optional[Tuple[str, ...]] = None
    """Restrict object kinds (default: all)."""
    colors: Optional[Tuple[str, ...]] = None
    """Restrict colours (default: all)."""
    overwrite: bool = False
    """Write into a non-empty --out (files of the same names are replaced)."""


@dataclass
class ImagesArgs:
    """Write labelled images (images/*.png + labels.jsonl) for training and evaluating the embedded models."""

    out: Path
    seed: Annotated[int, SEED] = 0
    count: Annotated[int, at_least(1)] = 1000
    resolution: Annotated[int, at_least(8)] = 64
    kind: Literal["object", "crop"] = "object"
    """object: one object per image; crop: crops of multi-object scenes labelled with the dominant object."""
    kinds: Optional[Tuple[str, ...]] = None
    colors: Optional[Tuple[str, ...]] = None
    overwrite: bool = False
    """Write into a non-empty --out (files of the same names are replaced)."""


@dataclass
class CategoryArgs:
    """Write a multi-view dataset of many objects of one category with their own proportions and colours (Blender
    format with one `object_index` per frame, + objects.json with each object's shape parameters)."""

    category: tyro.conf.Positional[Literal["chair", "table", "mug"]]
    out: Path
    objects: Annotated[int, at_least(1)] = 64
    views: Annotated[int, at_least(2)] = 24
    """Views per object; each object's views with index i % --holdout-every == 0 are held out."""
    resolution: Annotated[int, at_least(8)] = 64
    seed: Annotated[int, SEED] = 0
    holdout_every: Annotated[int, NON_NEGATIVE] = 8
    supersample: Annotated[int, at_least(1)] = 2
    progress: bool = True
    overwrite: bool = False
    """Write into a non-empty --out (files of the same names are replaced)."""


@dataclass
class VideoArgs:
    """Render an orbit of a random table-top scene as an MP4 (a stand-in for a hand-held video: try
    `langfield process video` on it); the true cameras go to OUT with .cameras.json for checking recovered poses."""

    out: Path
    seed: Annotated[int, SEED] = 0
    objects: Annotated[int, at_least(1)] = 6
    frames: Annotated[int, at_least(2)] = 120
    resolution: Annotated[int, at_least(8)] = 256
    elevation: Annotated[float, ELEVATION] = 35.0
    """Camera elevation above the table, in degrees."""
    fps: Annotated[int, at_least(1)] = 24
    textured: bool = True
    """Give surfaces a photo-like texture (flat colours leave structure from motion little to match)."""
    supersample: Annotated[int, at_least(1)] = 2
    overwrite: bool = False
    """Replace an existing --out."""


def world(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(
            "usage: langfield world scene|category|images [OPTIONS]\n\n  scene     a multi-view dataset of a random "
            "scene\n"
            "  category  multi-view datasets of many objects of one category (chair, table, mug)\n  images    "
            "labelled images for the embedded models\n  video     an MP4 orbit of a random scene (+ its true cameras)"
        )
        return
    sub, rest = argv[0], argv[1:]
    if sub == "scene":
        args = parse(SceneArgs, rest, "langfield world scene")
        fresh_folder(args.out, args.overwrite)
        from langfield.world.dataset import write_scene_dataset

        scene = write_scene_dataset(
            args.out,
            args.seed,
            args.objects,
            args.views,
            args.resolution,
            args.holdout_every,
            args.background,
            args.kinds,
            args.colors,
            args.supersample,
        )
        names = ", ".join(f"{o.attributes.color} {o.attributes.kind}" for o in scene.objects)
        print(f"wrote {args.out}: {args.views} views of {args.resolution}x{args.resolution}, objects: {names}")
    elif sub == "category":
        args = parse(CategoryArgs, rest, "langfield world category")
        fresh_folder(args.out, args.overwrite)
        from langfield.world.category import write_category_dataset

        write_category_dataset(
            args.out,
            args.category,
            args.objects,
            args.views,
            args.resolution,
            args.seed,
            args.holdout_every,
            args.supersample,
            args.progress,
        )
        print(
            f"wrote {args.out}: {args.objects} {args.category}s x {args.views} views of "
            f"{args.resolution}x{args.resolution}"
        )
    elif sub == "images":
        args = parse(ImagesArgs, rest, "langfield world images")
        fresh_folder(args.out, args.overwrite)
        from langfield.ui import task_bar
        from langfield.world.images import write_images

        with task_bar("rendering", args.count) as advance:
            write_images(args.out, args.seed, args.count, args.resolution, args.kind, args.kinds, args.colors, advance)
        print(f"wrote {args.count} images and labels.jsonl to {args.out}")
    elif sub == "video":
        args = parse(VideoArgs, rest, "langfield world video")
        write_orbit_video(args)
    else:
        raise LangfieldError(f"unknown world command '{sub}' (scene, category, images or video)")


def write_orbit_video(args: VideoArgs) -> None:
    from langfield.atomic import fresh_file, write_json
    from langfield.export.images import write_video
    from langfield.ui import task_bar
    from langfield.world.cameras import CAMERA_ANGLE_X
    from langfield.world.dataset import orbit_frames, orbit_poses
    from langfield.world.scene import random_scene

    if args.out.suffix.lower() != ".mp4":
        raise LangfieldError(f"{args.out}: give a file name ending in .mp4")
    fresh_file(args.out, args.overwrite)
    cameras_path = args.out.with_suffix(".cameras.json")
    fresh_file(cameras_path, args.overwrite)
    scene = random_scene(args.seed, args.objects)
    scene.textured = args.textured
    c2w = orbit_poses(args.frames, elevation_deg=args.elevation)
    with task_bar("rendering", args.frames) as advance:

        def frames():
            for frame in orbit_frames(scene, c2w, args.resolution, args.supersample):
                advance()
                yield frame

        write_video(args.out, frames(), args.fps)
    poses = [[*map(list, m.tolist()), [0.0, 0.0, 0.0, 1.0]] for m in c2w]
    write_json(
        cameras_path, {"camera_angle_x": CAMERA_ANGLE_X, "resolution": args.resolution, "transform_matrix": poses}
    )
    names = ", ".join(f"{o.attributes.color} {o.attributes.kind}" for o in scene.objects)
    print(f"wrote {args.out} ({args.frames} frames of {args.resolution}x{args.resolution}) and {cameras_path}: {names}")
