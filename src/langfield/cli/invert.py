"""``langfield invert RUN IMAGE``: the pose and codes of an image for a clipnerf run (CLIP-NeRF's inversion), so
that a user's own picture of an object of the category can be re-rendered and edited."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated

import tyro

from langfield.checks import NON_NEGATIVE, SEED, at_least
from langfield.cli.parsing import parse
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
    frames: Annotated[int, NON_NEGATIVE] = 24
    """Turntable frames (0: none)."""
    frame_resolution: Annotated[int, at_least(8)] = 96
    seed: Annotated[int, SEED] = 0
    device: str = "auto"
    overwrite: bool = False
    """Write into a non-empty --out."""


def invert(argv: list[str]) -> None:
    args = parse(InvertArgs, argv, "langfield invert")

    import numpy as np
    import torch

    from langfield.atomic import fresh_folder, write_json
    from langfield.cameras import orbit_cameras
    from langfield.export.images import read_image, save_png, write_video
    from langfield.export.turntable import contact_sheet
    from langfield.methods.clipnerf.inversion import invert as invert_image
    from langfield.methods.clipnerf.inversion import prepare_image
    from langfield.methods.clipnerf.model import ClipNerfModel
    from langfield.methods.clipnerf.views import ObjectViews
    from langfield.run import load_run
    from langfield.tensorfile import write_tensors

    fresh_folder(args.out, args.overwrite)
    run = load_run(args.run, args.device)
    if run.method.name != "clipnerf" or not isinstance(run.model, ClipNerfModel):
        raise LangfieldError(f"{args.run}: invert works on clipnerf runs, this is a {run.method.name} run")
    image = read_image(args.image)
    cfg = args.inversion
    model = run.model
    result = invert_image(model, image, cfg, torch.Generator().manual_seed(args.seed))
    model.use_codes(result.shape, result.appearance)
    out = args.out
    write_tensors(
        out / "codes.safetensors",
        {"shape": result.shape.cpu().contiguous(), "appearance": result.appearance.cpu().contiguous()},
        {},
    )
    center = torch.tensor(result.center)
    size = max(image.shape[0], image.shape[1])
    camera = orbit_cameras(
        torch.tensor(result.azimuth), torch.tensor(result.elevation), result.radius, result.fov, size, center=center
    )
    reconstruction = model.render_camera(camera, 0)["rgb"].cpu()
    square = prepare_image(image, size)
    save_png(out / "comparison.png", torch.cat([square, torch.ones(size, 2, 3), reconstruction], dim=1))
    summary = {
        "run": str(args.run),
        "image": str(args.image),
        "azimuth": result.azimuth,
        "elevation": result.elevation,
        "radius": result.radius,
        "mse": result.error,
        "first_search_mse": result.losses["search"][0],
        "resolution": cfg.resolution,
    }
    write_json(out / "inversion.json", summary)
    if args.frames:
        views = replace(ObjectViews.of(model.scene.cameras), center=result.center)
        frames = views.turntable(model, args.frames, args.frame_resolution, radius=result.radius, fov=result.fov)
        write_video(out / "turntable.mp4", frames, fps=12)
        save_png(out / "turntable.png", contact_sheet([frames[:: max(1, len(frames) // 8)][:8]]) / np.float32(255))
    print(
        f"inverted {args.image}: azimuth {result.azimuth:.0f}°, elevation {result.elevation:.0f}°, MSE "
        f"{result.error:.5f}; wrote {out}"
    )
