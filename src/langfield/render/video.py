"""Rendering camera paths of a run to videos or frames."""

from __future__ import annotations

from pathlib import Path

import torch

from langfield.cameras import orbit_path, spiral_path
from langfield.export.images import colorize, save_png, to_uint8, write_video
from langfield.run import load_run
from langfield.ui import task_bar


def render_path(args) -> Path:
    run = load_run(args.run, args.device)
    reference = run.scene.cameras.scaled(args.scale)
    aabb = getattr(run.model, "aabb", run.scene.aabb).detach().cpu()
    if args.path == "orbit":
        cameras = orbit_path(reference, args.frames, center=aabb.mean(dim=0), radius=args.radius, elevation_deg=args.elevation)
    elif args.path == "spiral":
        cameras = spiral_path(reference, args.frames)
    else:
        cameras = reference
    frames = []
    with task_bar("rendering", len(cameras)) as advance:
        for i in range(len(cameras)):
            out = run.model.render_camera(cameras, i)
            if args.output == "rgb":
                image = out["rgb"]
            elif args.output == "depth":
                image = colorize(out["depth"], lo=run.scene.near, hi=run.scene.far) * out["opacity"][..., None]
            else:
                image = out["opacity"][..., None].expand(-1, -1, 3)
            frames.append(to_uint8(image.cpu()))
            advance()
    out_path = Path(args.out)
    as_video = out_path.suffix.lower() == ".mp4" and not str(args.out).endswith("/")
    if as_video:
        write_video(out_path, frames, args.fps)
        return out_path
    out_path.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        save_png(out_path / f"frame_{i:04d}.png", torch.from_numpy(frame).float() / 255.0)
    return out_path
