"""``langfield generate "PROMPT"``: text to a 3D object with DreamFusion's score distillation, then a turntable
video, a contact sheet (colour and textureless) and a mesh in the run folder."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Literal

import tyro

from langfield.checks import NON_NEGATIVE, at_least
from langfield.cli.parsing import parse
from langfield.methods.dreamfusion.config import DreamFusionConfig, DreamFusionModelConfig
from langfield.train.config import TrainerConfig


@dataclass
class GenerateModelConfig(DreamFusionModelConfig):
    # set by the command's own arguments
    prompt: tyro.conf.Suppress[str] = ""
    negative_prompt: tyro.conf.Suppress[str] = ""
    guidance: tyro.conf.Suppress[str] = "langfield-prior"


@dataclass
class GenerateArgs:
    """Generate a 3D object from text (DreamFusion). Writes RUN/turntable.mp4, RUN/turntable.png (colour row,
    textureless row) and RUN/mesh.glb; `langfield render RUN` and `langfield export RUN` work on the run."""

    prompt: tyro.conf.Positional[
        Annotated[str, tyro.conf.arg(metavar="PROMPT", help="what to generate, e.g. 'a glossy red mug'")]
    ]
    output: Path = Path("runs/generate")
    guidance: str = "langfield-prior"
    """Diffusion model: langfield-prior (embedded, offline), a .safetensors file of that architecture, or a
    diffusers folder / hub id (Stable Diffusion; DeepFloyd-IF-style pixel models)."""
    negative_prompt: str = ""
    trainer: Annotated[TrainerConfig, tyro.conf.OmitArgPrefixes] = field(
        default_factory=lambda: DreamFusionConfig().trainer
    )
    model: GenerateModelConfig = field(default_factory=GenerateModelConfig)
    frames: Annotated[int, NON_NEGATIVE] = 48
    """Turntable frames (0: no video)."""
    frame_resolution: Annotated[int, at_least(8)] = 128
    mesh: Literal["glb", "obj", "ply", "none"] = "glb"
    mesh_resolution: Annotated[int, at_least(8)] = 128


def run_config(args: GenerateArgs) -> DreamFusionConfig:
    values = {f.name: getattr(args.model, f.name) for f in fields(DreamFusionModelConfig)}
    values.update(prompt=args.prompt, negative_prompt=args.negative_prompt, guidance=args.guidance)
    return DreamFusionConfig(output=args.output, trainer=args.trainer, model=DreamFusionModelConfig(**values))


def write_outputs(
    run_path: Path, frames: int, resolution: int, mesh: str, mesh_resolution: int, device: str = "auto"
) -> list[str]:
    """Turntable video and contact sheet, and the mesh, of a dreamfusion run; returns what was written."""
    from langfield.export.geometry import extract_mesh, save_mesh
    from langfield.export.images import save_png, write_video
    from langfield.export.turntable import contact_sheet, turntable
    from langfield.methods.dreamfusion.model import DreamFusionModel
    from langfield.run import load_run

    run = load_run(run_path, device)
    cfg = run.config.model
    model = run.model
    assert isinstance(model, DreamFusionModel)

    def views(count: int) -> list:
        return turntable(model, count, 20.0, 0.5 * sum(cfg.radius_range), 0.5 * sum(cfg.fov_range), resolution)

    written = []
    if frames > 0:
        video = views(frames)
        write_video(run_path / "turntable.mp4", video, fps=24)
        written.append(str(run_path / "turntable.mp4"))
    colour = views(8)
    model.eval_shading = "textureless"
    geometry = views(8)
    model.eval_shading = "lambertian"
    save_png(run_path / "turntable.png", contact_sheet([colour, geometry]).astype("float32") / 255.0)
    written.append(str(run_path / "turntable.png"))
    if mesh != "none":
        out = run_path / f"mesh.{mesh}"
        surface = extract_mesh(run.model, run.scene.aabb, mesh_resolution)
        save_mesh(surface, out)
        written.append(f"{out} ({len(surface.vertices)} vertices, {len(surface.faces)} faces)")
    return written


def generate(argv: list[str]) -> None:
    args = parse(GenerateArgs, argv, "langfield generate")
    from langfield.guidance.prompts import check_prompt

    args.prompt = check_prompt(args.prompt)
    if args.negative_prompt:
        args.negative_prompt = check_prompt(args.negative_prompt, "negative prompt")
    from langfield.methods.registry import get_method
    from langfield.train.trainer import Trainer

    path = Trainer(get_method("dreamfusion"), run_config(args)).train()
    for item in write_outputs(
        path, args.frames, args.frame_resolution, args.mesh, args.mesh_resolution, args.trainer.device
    ):
        print(f"wrote {item}")
