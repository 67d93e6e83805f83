"""Small synthetic datasets written by the tests: an analytically rendered sphere in each supported format."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from langfield.cameras import Cameras, look_at

RADIUS = 0.6


def ring_poses(count: int, distance: float = 3.0, seed: int = 0) -> np.ndarray:
    """Cameras around the origin (z up) at varied elevations, looking at it: (N, 4, 4)."""
    rng = np.random.default_rng(seed)
    poses = []
    for i in range(count):
        azimuth = 2 * math.pi * i / count
        elevation = math.radians(rng.uniform(10, 60))
        eye = distance * torch.tensor(
            [math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation)]
        )
        c2w = look_at(eye, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
        poses.append(np.concatenate([c2w.numpy(), [[0, 0, 0, 1]]]))
    return np.stack(poses)


def render_sphere(c2w: np.ndarray, focal: float, size: int, supersample: int = 2) -> np.ndarray:
    """RGBA float image of a sphere coloured by its normal (0.5 + 0.5 n), anti-aliased by supersampling."""
    s = size * supersample
    cameras = Cameras(
        torch.from_numpy(c2w[None, :3, :4]).float(),
        torch.tensor([focal * supersample]),
        torch.tensor([focal * supersample]),
        torch.tensor([s / 2.0]),
        torch.tensor([s / 2.0]),
        s,
        s,
    )
    o, d = cameras.image_rays(0)
    b = (o * d).sum(-1)
    c = (o * o).sum(-1) - RADIUS**2
    disc = b * b - c
    hit = disc > 0
    t = -b - torch.sqrt(disc.clamp_min(0))
    normal = (o + d * t[:, None]) / RADIUS
    rgb = torch.where(hit[:, None], 0.5 + 0.5 * normal, torch.zeros_like(normal))
    rgba = torch.cat([rgb, hit[:, None].float()], dim=-1).reshape(s, s, 4).numpy()
    return rgba.reshape(size, supersample, size, supersample, 4).mean(axis=(1, 3))


def save_rgba(path: Path, rgba: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    straight = rgba.copy()
    alpha = straight[..., 3:]
    straight[..., :3] = np.where(alpha > 0, straight[..., :3] / np.maximum(alpha, 1e-6), 0)
    Image.fromarray((np.clip(straight, 0, 1) * 255 + 0.5).astype(np.uint8), "RGBA").save(path)


def write_blender(folder: Path, count: int = 16, size: int = 32, test_count: int = 0, angle: float = 0.6) -> Path:
    folder = Path(folder)
    focal = 0.5 * size / math.tan(0.5 * angle)
    splits = {"train": ring_poses(count, seed=0)}
    if test_count:
        splits["test"] = ring_poses(test_count, seed=1)
    for split, poses in splits.items():
        frames = []
        for i, pose in enumerate(poses):
            save_rgba(folder / split / f"r_{i}.png", render_sphere(pose, focal, size))
            frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": pose.tolist()})
        (folder / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": angle, "frames": frames}))
    return folder


def write_nerfstudio(
    folder: Path, count: int = 8, size: int = 32, per_frame: bool = False, with_splits: bool = False
) -> Path:
    folder = Path(folder)
    focal = 0.5 * size / math.tan(0.3)
    frames = []
    for i, pose in enumerate(ring_poses(count)):
        name = f"images/frame_{i:03d}.png"
        save_rgba(folder / name, render_sphere(pose, focal, size))
        frame = {"file_path": name, "transform_matrix": pose.tolist()}
        if per_frame:
            frame.update({"fl_x": focal, "fl_y": focal, "cx": size / 2, "cy": size / 2, "w": size, "h": size})
        frames.append(frame)
    meta: dict = {"frames": frames}
    if not per_frame:
        meta.update({"fl_x": focal, "fl_y": focal, "cx": size / 2, "cy": size / 2, "w": size, "h": size})
    if with_splits:
        names = [f["file_path"] for f in frames]
        meta["train_filenames"] = names[1:]
        meta["test_filenames"] = names[:1]
    (folder / "transforms.json").write_text(json.dumps(meta))
    return folder


def write_llff(folder: Path, count: int = 6, size: int = 24) -> Path:
    folder = Path(folder)
    focal = 30.0
    rows = []
    for i in range(count):
        # forward-facing: cameras on a small plane looking down -z at the sphere (OpenGL), stored LLFF-style
        c2w = np.eye(4)
        c2w[:3, 3] = [0.2 * (i % 3) - 0.2, 0.1 * (i // 3), 3.0]
        rgba = render_sphere(c2w, focal, size)
        image = rgba[..., :3] + (1 - rgba[..., 3:])  # opaque white background, like a photo
        (folder / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255 + 0.5).astype(np.uint8), "RGB").save(folder / "images" / f"img_{i:03d}.png")
        # OpenGL [right, up, back] -> LLFF [down, right, back]
        llff = np.concatenate([-c2w[:3, 1:2], c2w[:3, 0:1], c2w[:3, 2:4], np.array([[size], [size], [focal]])], axis=1)
        rows.append(np.concatenate([llff.reshape(-1), [2.0, 4.0]]))
    np.save(folder / "poses_bounds.npy", np.stack(rows))
    return folder


def langfield(*args, cwd=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "langfield.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def assert_clean_error(result, *fragments):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def interrupt_on_call(monkeypatch, module, name: str, call: int) -> None:
    """Press Ctrl-C (SIGINT to this process) during the ``call``-th call of ``module.name``, in the middle of a step."""
    import signal

    original, calls = getattr(module, name), []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            signal.raise_signal(signal.SIGINT)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


def tiny_nerf_options(resolution=24, grow_at=(20, 40), batch_rays=256, *extra):
    """`langfield train nerf` options of a nerf small enough for a test (12-point grids growing to ``resolution``,
    a 16-cell occupancy grid, no progress bar), then ``extra``."""
    grid = ["--model.resolution", str(resolution), "--model.initial-resolution", "12"]
    grid += ["--model.grow-at", *map(str, grow_at), "--model.occupancy-resolution", "16"]
    return [*grid, "--batch-rays", str(batch_rays), "--no-progress", *extra]


def signal_state(pid: int) -> str:
    """The signal masks of process ``pid`` (Linux's /proc: blocked, ignored, caught), for a failure's message."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return "unknown"
    return " ".join(line.replace("\t", "") for line in lines if line.startswith(("SigBlk", "SigIgn", "SigCgt")))
