"""``langfield invert RUN IMAGE``: the pose and codes of an image for a clipnerf run (CLIP-NeRF's inversion), so
that a user's own picture of an object of the category can be re-rendered and edited."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated

import tyro

from langfield.errors import LangfieldError
from langfield.methods.clipnerf.inversion import InversionConfig


@dataclass
class InvertArgs:
    """Recover the camera pose and the shape and appearance codes of IMAGE for a clipnerf RUN. Writes OUT/inversion.json
    (pose, error), OUT/codes.safetensors, OUT/comparison.png (the image | its reconstruction) and a turntable of the
    recovered object (OUT/turntable.mp4, OUT/turntable.png)."""

    run: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="RUN")]]
    image: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="IMAGE")]]
    out: Path = Path("inversion")
    inversion: Annotated[InversionConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=InversionConfig)
    frames: int = 24
    """Turntable frames (0: none)."""
    frame_resolution: int = 96
    seed: int = 0
    device: str = "auto"


def invert(argv: list[str]) -> None:
    args = tyro.cli(InvertArgs, args=argv, prog="langfield invert")
    import json

    import numpy as np
    import torch
    from safetensors.torch import save_file

    from langfield.cameras import orbit_cameras
    from langfield.export.images import read_image, save_png, write_video
    from langfield.export.turntable import contact_sheet
    from langfield.methods.clipnerf.inversion import invert as invert_image
    from langfield.methods.clipnerf.inversion import prepare_image
    from langfield.methods.clipnerf.views import ObjectViews
    from langfield.run import load_run

    run = load_run(args.run, args.device)
    if run.method.name != "clipnerf":
        raise LangfieldError(f"{args.run}: invert works on clipnerf runs, this is a {run.method.name} run")
    image = read_image(args.image)
    cfg = args.inversion
    result = invert_image(run.model, image, cfg, torch.Generator().manual_seed(args.seed))
    model = run.model
    model.use_codes(result.shape, result.appearance)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    save_file({"shape": result.shape.cpu().contiguous(), "appearance": result.appearance.cpu().contiguous()}, str(out / "codes.safetensors"))
    center = torch.tensor(result.center)
    size = max(image.shape[0], image.shape[1])
    camera = orbit_cameras(torch.tensor(result.azimuth), torch.tensor(result.elevation), result.radius, result.fov, size, center=center)
    reconstruction = model.render_camera(camera, 0)["rgb"].cpu()
    square = prepare_image(image, size)
    save_png(out / "comparison.png", torch.cat([square, torch.ones(size, 2, 3), reconstruction], dim=1))
    summary = {"run": str(args.run), "image": str(args.image), "azimuth": result.azimuth, "elevation": result.elevation,
               "radius": result.radius, "mse": result.error, "first_search_mse": result.losses["search"][0],
               "resolution": cfg.resolution}
    (out / "inversion.json").write_text(json.dumps(summary, indent=2))
    if args.frames:
        views = replace(ObjectViews.of(model.scene.cameras), center=result.center)
        frames = views.turntable(model, args.frames, args.frame_resolution, radius=result.radius, fov=result.fov)
        write_video(out / "turntable.mp4", frames, fps=12)
        save_png(out / "turntable.png", contact_sheet([frames[:: max(1, len(frames) // 8)][:8]]) / np.float32(255))
    print(f"inverted {args.image}: azimuth {result.azimuth:.0f}°, elevation {result.elevation:.0f}°, MSE {result.error:.5f}; wrote {out}")
