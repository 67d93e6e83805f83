"""`langfield process images|video`: posed datasets from photos and videos (structure from motion, pycolmap)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import assert_clean_error, langfield
from langfield.apps.pose_accuracy import pose_errors, umeyama
from langfield.data.config import DataConfig
from langfield.data.loader import load_dataset
from langfield.data.ply import point_positions
from langfield.process import ProcessOptions, process_images

VIEWS, SIZE = 16, 160


def textured_views(folder: Path, views: int = VIEWS, size: int = SIZE, seed: int = 2) -> np.ndarray:
    """Views of a textured procedural scene around the table, saved as PNG; returns their true c2w (V, 4, 4)."""
    from langfield.world.cameras import hemisphere_poses, pinhole
    from langfield.world.dataset import CAMERA_RADIUS, render_views
    from langfield.world.scene import random_scene

    scene = random_scene(seed, 4)
    scene.textured = True
    c2w = hemisphere_poses(views, CAMERA_RADIUS, np.random.default_rng(seed), elevation=(25.0, 55.0))
    folder.mkdir(parents=True, exist_ok=True)
    for i, view in enumerate(render_views(scene, pinhole(c2w, size))):
        rgb = (view["rgb"].clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)
        Image.fromarray(rgb).save(folder / f"view_{i}.png")
    return np.concatenate([c2w.double().numpy(), np.tile([[[0.0, 0, 0, 1]]], (views, 1, 1))], axis=1)


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    root = tmp_path_factory.mktemp("capture")
    truth = textured_views(root / "photos")
    report = process_images(root / "photos", root / "data", ProcessOptions(camera_model="PINHOLE", progress=False))
    return root, truth, report


def _frames(data: Path) -> tuple[list[str], np.ndarray]:
    frames = json.loads((data / "transforms.json").read_text())["frames"]
    return [Path(f["file_path"]).name for f in frames], np.stack([np.array(f["transform_matrix"]) for f in frames])


def test_recovered_poses_match_the_truth(capture):
    root, truth, report = capture
    assert report.registered >= VIEWS - 3 and report.total == VIEWS
    assert report.mean_reprojection_error_px < 1.0
    names, estimated = _frames(root / "data")
    index = [int(Path(n).stem.split("_")[1]) for n in names]
    errors = pose_errors(estimated, truth[index])
    assert errors["median_rotation_error_deg"] < 1.0, errors
    assert errors["median_centre_error_fraction"] < 0.01, errors
    # the written report is the returned one
    assert json.loads((root / "data" / "process_report.json").read_text())["registered"] == report.registered


def test_processed_dataset_loads_with_the_nerfstudio_parser(capture):
    root, truth, report = capture
    dataset = load_dataset(DataConfig(data=root / "data"))
    assert dataset.format == "nerfstudio" and len(dataset) == report.registered
    assert (dataset.width, dataset.height) == (SIZE, SIZE)
    # natural order: view_2 before view_10, so held-out views i % 8 == 0 are the capture's own order
    numbers = [int(Path(n).stem.split("_")[1]) for n in dataset.filenames]
    assert numbers == sorted(numbers) and numbers[0] == 0 and max(numbers) >= 10
    # the sparse points set a scene box holding nearly all of them, its longest side 3 (the Blender box), inside
    # the cameras' ring
    names, estimated = _frames(root / "data")
    normalise = umeyama(estimated[:, :3, 3], dataset.cameras.c2w[:, :3, 3].double().numpy())
    points = normalise.points(point_positions(root / "data" / "sparse_pc.ply"))
    lo, hi = dataset.aabb.double().numpy()
    inside = ((points >= lo) & (points <= hi)).all(axis=1).mean()
    assert inside > 0.98 and float((hi - lo).max()) == pytest.approx(3.0, rel=1e-4), (inside, lo, hi)
    ring = dataset.cameras.c2w[:, :2, 3].double().numpy()
    assert float((hi - lo)[:2].max()) < float((ring.max(axis=0) - ring.min(axis=0)).min()), (lo, hi)
    # the table (world z = 0, below every camera) is inside the box: mapped with the true cameras' alignment
    to_data = umeyama(
        truth[[int(Path(n).stem.split("_")[1]) for n in names], :3, 3], dataset.cameras.c2w[:, :3, 3].double().numpy()
    )
    centre = to_data.points(np.array([[0.0, 0.0, 0.1]]))[0]
    assert ((centre > lo) & (centre < hi)).all(), (centre, lo, hi)


def test_downscaled_copies_are_read_for_downscale(capture):
    root, _, _ = capture
    for factor in (2, 4, 8):
        copy = Image.open(root / "data" / f"images_{factor}" / "view_3.png")
        assert copy.size == (SIZE // factor, SIZE // factor)
    halved = load_dataset(DataConfig(data=root / "data", downscale=2))
    assert (halved.width, halved.height) == (SIZE // 2, SIZE // 2)
    full = load_dataset(DataConfig(data=root / "data"))
    assert float(halved.cameras.fx[0]) == pytest.approx(float(full.cameras.fx[0]) / 2, rel=1e-5)
    # the copy agrees with area-downscaling the full image (within 8-bit rounding)
    by_area = full.images[3].float().reshape(SIZE // 2, 2, SIZE // 2, 2, 4).mean(dim=(1, 3))
    assert (halved.images[3].float() - by_area).abs().max() < 2 / 255


def test_opencv_camera_is_undistorted(capture, tmp_path):
    root, _, _ = capture
    report = process_images(root / "photos", tmp_path / "data", ProcessOptions(camera_model="OPENCV", progress=False))
    assert report.registered >= VIEWS - 3 and report.camera_model == "OPENCV"
    meta = json.loads((tmp_path / "data" / "transforms.json").read_text())
    assert meta["camera_model"] == "PINHOLE"  # the images were undistorted: what is written is a pinhole camera
    first = meta["frames"][0]
    image = Image.open(tmp_path / "data" / first["file_path"])
    assert image.size == (meta["w"], meta["h"]) and abs(meta["w"] - SIZE) <= SIZE // 10
    assert np.asarray(image).std() > 10  # a picture, not a blank
    assert len(load_dataset(DataConfig(data=tmp_path / "data"))) == report.registered


def test_per_image_intrinsics_are_written_per_frame(capture, tmp_path):
    root, _, _ = capture
    options = ProcessOptions(camera_model="PINHOLE", shared_intrinsics=False, progress=False)
    report = process_images(root / "photos", tmp_path / "data", options)
    assert report.registered >= VIEWS // 2
    meta = json.loads((tmp_path / "data" / "transforms.json").read_text())
    assert "fl_x" not in meta and all({"fl_x", "fl_y", "cx", "cy", "w", "h"} <= set(f) for f in meta["frames"])
    assert len({round(f["fl_x"], 3) for f in meta["frames"]}) > 1  # each image its own camera
    assert len(load_dataset(DataConfig(data=tmp_path / "data"))) == report.registered


def test_cli_refuses_a_non_empty_out_and_replaces_it_with_overwrite(capture, tmp_path):
    root, _, _ = capture
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    result = langfield("process", "images", root / "photos", "--out", out, "--sfm.camera-model", "PINHOLE")
    assert_clean_error(result, str(out), "--overwrite")
    assert (out / "mine.txt").read_text() == "keep me"
    result = langfield(
        "process", "images", root / "photos", "--out", out, "--sfm.camera-model", "PINHOLE", "--overwrite"
    )
    assert result.returncode == 0, result.stderr
    assert "registered" in result.stdout and not (out / "mine.txt").exists()
    assert (out / "transforms.json").is_file() and not list(tmp_path.glob(".out.*"))


def _bad_folder(tmp_path: Path, kind: str) -> Path:
    folder = tmp_path / kind
    folder.mkdir()
    rng = np.random.default_rng(0)
    if kind == "two":
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    elif kind == "unreadable":
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / f"{i}.png")
        (folder / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    elif kind == "mixed":
        for i, size in enumerate([(40, 40), (40, 40), (30, 50)]):
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    elif kind == "blank":  # readable, one size, but nothing to match
        for i in range(4):
            Image.fromarray(np.full((64, 64, 3), 200, dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.mark.parametrize(
    "kind, fragments",
    [
        ("empty", ["no images found"]),
        ("two", ["2 image(s) found", "at least 3"]),
        ("unreadable", ["3.png", "cannot read image"]),
        ("mixed", ["different sizes", "2 of 40x40", "1 of 50x30"]),
        ("blank", ["4 images", "nothing can be registered"]),
    ],
)
def test_bad_captures_fail_with_one_line_and_leave_nothing(tmp_path, kind, fragments):
    folder = _bad_folder(tmp_path, kind)
    out = tmp_path / "out"
    result = langfield("process", "images", folder, "--out", out)
    assert_clean_error(result, *fragments)
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_undecodable_video_fails_with_one_line(tmp_path):
    video = tmp_path / "broken.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    result = langfield("process", "video", video, "--out", tmp_path / "out")
    assert_clean_error(result, "broken.mp4", "cannot decode video")
    assert not (tmp_path / "out").exists()
    assert_clean_error(
        langfield("process", "video", tmp_path / "missing.mp4", "--out", tmp_path / "o"), "no such video"
    )


def test_sharpest_frame_of_each_window_is_kept(tmp_path):
    from scipy.ndimage import uniform_filter

    from langfield.export.images import write_video
    from langfield.process.frames import sharpest_frames

    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 255, (64, 64, 3)).astype(np.float32)
    frames, expected = [], []
    for window in range(4):  # windows of 5 frames; the sharp one sits at a different place in each
        for k in range(5):
            if k == (window + 1) % 5:
                expected.append(len(frames))
                frames.append(sharp.astype(np.uint8))
            else:
                frames.append(uniform_filter(sharp, size=(5, 5, 1)).astype(np.uint8))
    write_video(tmp_path / "v.mp4", iter(frames), fps=10)
    chosen, indices, total = sharpest_frames(tmp_path / "v.mp4", 4)
    assert total == 20 and indices == expected and len(chosen) == 4


@pytest.mark.slow
def test_video_to_trained_nerf(tmp_path):
    """The whole path at tiny size: a world orbit as MP4 → process video → train nerf → held-out PSNR."""
    video = tmp_path / "orbit.mp4"
    result = langfield("world", "video", "--out", video, "--seed", "4", "--objects", "3", "--frames", "40",
                       "--resolution", "128", "--elevation", "40")  # fmt: skip
    assert result.returncode == 0, result.stderr
    truth = json.loads(video.with_suffix(".cameras.json").read_text())
    assert len(truth["transform_matrix"]) == 40
    focal = 0.5 * 128 / math.tan(0.5 * truth["camera_angle_x"])  # a one-elevation orbit cannot self-calibrate
    result = langfield("process", "video", video, "--out", tmp_path / "data", "--frames", "20",
                       "--sfm.camera-model", "PINHOLE", "--sfm.focal-length", f"{focal:.4f}")  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "data" / "process_report.json").read_text())
    assert report["video_frames"] == 40 and report["matcher"] == "sequential"
    # COLMAP's threads make the count vary from run to run (17-20 of these 20 seen; the ends of the sequence have
    # one neighbour each): the poses of those registered are what must be right
    assert report["registered"] >= 16, report
    frames = json.loads((tmp_path / "data" / "transforms.json").read_text())["frames"]
    source = [report["frame_indices"][int(Path(f["file_path"]).stem.split("_")[1]) - 1] for f in frames]
    errors = pose_errors(
        np.stack([np.array(f["transform_matrix"]) for f in frames]),
        np.stack([np.array(truth["transform_matrix"][i]) for i in source]),
    )
    assert errors["median_rotation_error_deg"] < 2.0 and errors["median_centre_error_fraction"] < 0.02, errors
    result = langfield("train", "nerf", "--data", tmp_path / "data", "--output", tmp_path / "run", "--max-steps", "300",
                       "--downscale", "2", "--no-progress", "--model.resolution", "48")  # fmt: skip
    assert result.returncode == 0, result.stderr
    result = langfield("eval", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    psnr = json.loads((tmp_path / "run" / "metrics.json").read_text())["psnr"]
    # a tiny budget: the field must beat the flat guess (the training images' mean colour) clearly
    from langfield.train.metrics import psnr as psnr_of

    dataset = load_dataset(DataConfig(data=tmp_path / "data", downscale=2))
    mean = torch.stack([dataset.rgb(i) for i in dataset.train_indices]).mean(dim=(0, 1, 2))
    flat = float(np.mean([psnr_of(mean.expand_as(dataset.rgb(i)), dataset.rgb(i)) for i in dataset.test_indices]))
    assert psnr > flat + 1.0, (psnr, flat)


def test_pycolmap_loads_without_breaking_png_writing():
    """pycolmap's wheel carries its own zlib: imported before PIL, the next PNG saves crash with a double free."""
    code = (
        "from langfield.process.colmap import load_pycolmap; load_pycolmap()\n"
        "import io, numpy as np\nfrom PIL import Image\n"
        "for _ in range(20):\n"
        "    Image.fromarray(np.random.randint(0, 255, (300, 300, 3), dtype=np.uint8)).save(io.BytesIO(), 'PNG')\n"
        "print('saved')"
    )
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "saved" in result.stdout, result.stderr[-400:]


def test_missing_or_damaged_sparse_points_are_one_clear_error(capture, tmp_path):
    import shutil

    from langfield.errors import LangfieldError

    root, _, _ = capture
    data = tmp_path / "data"
    shutil.copytree(root / "data", data)
    meta = json.loads((data / "transforms.json").read_text())
    (data / "transforms.json").write_text(json.dumps(meta | {"ply_file_path": "gone.ply"}))
    with pytest.raises(LangfieldError, match="ply_file_path 'gone.ply': no such file"):
        load_dataset(DataConfig(data=data))
    (data / "transforms.json").write_text(json.dumps(meta))
    (data / "sparse_pc.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement face 3\nend_header\n")
    with pytest.raises(LangfieldError, match="sparse_pc.ply: no vertex element"):
        load_dataset(DataConfig(data=data))


def test_implausible_cameras_are_named_with_the_reason():
    from types import SimpleNamespace

    from langfield.process.pipeline import implausible_cameras

    def cam(fx, fy=None, cx=80.0, cy=60.0):
        return SimpleNamespace(params=[fx, fx if fy is None else fy, cx, cy])

    cameras = {1: cam(150.0), 2: cam(162.0), 3: cam(-0.21), 4: cam(900.0), 5: cam(155.0, cx=400.0), 6: cam(158.0)}
    bad = implausible_cameras(cameras, 160, 120)
    assert set(bad) == {3, 4, 5}, bad
    assert "not positive" in bad[3] and "median" in bad[4] and "outside" in bad[5]
    assert implausible_cameras({1: cam(150.0), 2: cam(300.0)}, 160, 120) == {}  # 2x apart: both plausible


def test_the_summary_names_the_views_left_out_for_their_cameras():
    from langfield.process.pipeline import ProcessReport

    rejected = {f"view_{i}.png": f"focal length {i}.0 px is 4x or more off" for i in range(12)}
    report = ProcessReport("p", 4, 16, [], 0.5, 10, "exhaustive", "PINHOLE", (160, 120), (160, 120), rejected=rejected)
    lines = report.summary().splitlines()
    assert "left out view_3.png: focal length 3.0 px is 4x or more off" in lines
    assert sum(line.startswith("left out view_") for line in lines) == 10 and "left out 2 more" in lines[-1]
