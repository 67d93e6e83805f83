"""``langfield mappers RUN`` trains CLIP-NeRF's mappers for a clipnerf run; ``langfield edit RUN "PROMPT"`` (or
``--exemplar IMAGE``) edits an object with them in one forward pass and writes before/after turntables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Optional

import tyro

from langfield.checks import NON_NEGATIVE, SEED, at_least, finite
from langfield.cli.parsing import parse
from langfield.errors import LangfieldError
from langfield.methods.clipnerf.inversion import InversionConfig
from langfield.methods.clipnerf.mappers import MapperConfig, Part


@dataclass
class MappersArgs:
    """Train the text/image → code mappers of a clipnerf RUN (the generator stays frozen); writes
    RUN/mappers.safetensors and RUN/mappers.json."""

    run: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="RUN")]]
    mappers: Annotated[MapperConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=MapperConfig)
    category: Optional[str] = None
    """The category's name for the prompt library (default: the one of the run's dataset)."""
    device: str = "auto"
    progress: bool = True


def mappers(argv: list[str]) -> None:
    args = parse(MappersArgs, argv, "langfield mappers")
    from langfield.apps.editing import MAPPERS_FILE, load_clipnerf
    from langfield.atomic import write_json
    from langfield.encoders import load_encoder
    from langfield.methods.clipnerf.mappers import train_mappers
    from langfield.methods.clipnerf.prompts import dataset_category, prompt_library, read_prompts

    run, _ = load_clipnerf(args.run, args.device)
    cfg = args.mappers
    if cfg.prompts is not None:
        prompts = read_prompts(cfg.prompts)
    else:
        category = args.category or dataset_category(run.config.data.data)
        if category is None:
            raise LangfieldError(
                f"{args.run}: its dataset does not say its category; pass --category NAME or --prompts FILE"
            )
        prompts = prompt_library(category)
    encoder = load_encoder(cfg.encoder, run.model.box.device)
    result, info = train_mappers(run.model, encoder, prompts, cfg, args.progress)
    result.save(args.run / MAPPERS_FILE, encoder.name, cfg, info)
    write_json(args.run / "mappers.json", {"encoder": encoder.name, **info})
    print(
        f"trained the mappers in {info['seconds']:.0f} s: CLIP loss {info['clip_loss_first']:.3f} → "
        f"{info['clip_loss_last50']:.3f} "
        f"(mean of the last 50 steps); wrote {args.run / MAPPERS_FILE}"
    )


@dataclass
class EditArgs:
    """Edit an object of a clipnerf RUN (a run folder, or `chair`: the embedded chair model) towards PROMPT, or
    towards an --exemplar image, with the run's mappers (`langfield mappers RUN` trains them). The source is a random
    training object, a given one (--source 3) or your own image (--source IMAGE, inverted first). Writes
    OUT/before.mp4, OUT/after.mp4, OUT/before_after.png (8 views each), OUT/edit.json (encoder similarity
    before/after, silhouette IoU, mean colours, seconds) and OUT/codes.safetensors."""

    run: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="RUN")]]
    prompt: tyro.conf.Positional[Annotated[Optional[str], tyro.conf.arg(metavar="PROMPT")]] = None
    exemplar: Optional[Path] = None
    """An image to take the look of (instead of PROMPT)."""
    source: str = "random"
    """random (a training object chosen by --seed), a training object's index, or an image file to invert."""
    part: Part = "both"
    """Which codes the edit moves: shape, appearance or both."""
    strength: Annotated[float, finite()] = 1.0
    """Scale of the mappers' offsets (0: no edit)."""
    out: Path = Path("edit")
    frames: Annotated[int, NON_NEGATIVE] = 24
    """Frames of each turntable (0: none)."""
    frame_resolution: Annotated[int, at_least(8)] = 96
    seed: Annotated[int, SEED] = 0
    device: str = "auto"
    inversion: InversionConfig = field(default_factory=InversionConfig)
    overwrite: bool = False
    """Write into a non-empty --out."""


def _source_codes(args: EditArgs, model):
    import torch

    if args.source == "random" or args.source.isdigit():
        if args.source == "random":
            index = int(torch.randint(model.objects, (1,), generator=torch.Generator().manual_seed(args.seed)))
        else:
            index = int(args.source)
        model.select(index)  # checks the index
        shape, appearance = model.active_codes()
        return shape.detach(), appearance.detach(), f"training object {index}"
    from langfield.export.images import read_image
    from langfield.methods.clipnerf.inversion import invert

    path = Path(args.source)
    if not path.is_file():
        raise LangfieldError(
            f"--source must be random, an object index or an image file; {args.source} is none of these"
        )
    result = invert(model, read_image(path), args.inversion, torch.Generator().manual_seed(args.seed))
    return result.shape, result.appearance, f"{path} (inverted, MSE {result.error:.4f})"


def edit(argv: list[str]) -> None:
    args = parse(EditArgs, argv, "langfield edit")
    if (args.prompt is None) == (args.exemplar is None):
        raise LangfieldError("give either a PROMPT or --exemplar IMAGE (one of them)")
    if args.prompt is not None and not args.prompt.strip():
        raise LangfieldError("the prompt is empty")
    import time

    import numpy as np
    import torch

    from langfield.apps.editing import load_clipnerf, load_mappers
    from langfield.atomic import fresh_folder, write_json
    from langfield.encoders import load_encoder
    from langfield.export.images import read_image, save_png, write_video
    from langfield.export.turntable import contact_sheet
    from langfield.methods.clipnerf.mappers import edit_report
    from langfield.methods.clipnerf.views import ObjectViews
    from langfield.tensorfile import write_tensors

    fresh_folder(args.out, args.overwrite)
    run, model = load_clipnerf(args.run, args.device)
    mapper, encoder_name = load_mappers(run)
    device = model.box.device
    encoder = load_encoder(encoder_name, device)
    shape, appearance, source = _source_codes(args, model)
    started = time.perf_counter()  # the edit itself: embed the target, one pass through the mappers
    if args.prompt is not None:
        target = encoder.encode_text(args.prompt)[0]
    else:
        assert args.exemplar is not None  # parsing asks for --prompt or --exemplar
        with torch.no_grad():
            target = encoder.encode_image(read_image(args.exemplar)[..., :3].to(device))[0]
    new_shape, new_appearance = mapper.edit(target, shape, appearance, args.part, args.strength)
    seconds = time.perf_counter() - started

    stats, before_images, after_images = edit_report(
        model, encoder, (shape, appearance), (new_shape, new_appearance), target, resolution=args.frame_resolution
    )
    args.out.mkdir(parents=True, exist_ok=True)
    sheet = contact_sheet(
        [
            [(im.clamp(0, 1) * 255).round().byte().cpu().numpy() for im in images]
            for images in (before_images, after_images)
        ]
    )
    save_png(args.out / "before_after.png", sheet / np.float32(255))
    codes = {"source_shape": shape, "source_appearance": appearance, "shape": new_shape, "appearance": new_appearance}
    write_tensors(args.out / "codes.safetensors", {k: v.detach().cpu().clone() for k, v in codes.items()}, {})
    if args.frames:
        views = ObjectViews.of(model.scene.cameras)
        for name, codes in (("before", (shape, appearance)), ("after", (new_shape, new_appearance))):
            model.use_codes(*codes)
            frames = views.turntable(model, args.frames, args.frame_resolution)
            write_video(args.out / f"{name}.mp4", frames, fps=12)
    summary = {
        "run": str(args.run),
        "prompt": args.prompt,
        "exemplar": str(args.exemplar) if args.exemplar else None,
        "source": source,
        "part": args.part,
        "strength": args.strength,
        "encoder": encoder.name,
        "edit_seconds": seconds,
        **stats,
    }
    write_json(args.out / "edit.json", summary)
    what = repr(args.prompt) if args.prompt is not None else f"the look of {args.exemplar}"
    print(
        f"edited {source} towards {what} in {seconds * 1000:.0f} ms: similarity {stats['similarity_before']:.3f} → "
        f"{stats['similarity_after']:.3f} over 8 views, "
        f"silhouette IoU {stats['silhouette_iou']:.3f}; wrote {args.out}"
    )
