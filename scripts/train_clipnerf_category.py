"""Train the embedded clipnerf model of a procedural category and write its shipped weights.

    .venv/bin/python scripts/train_clipnerf_category.py              # the shipped chair model (~12 min on 2 cores)
    .venv/bin/python scripts/train_clipnerf_category.py --resume     # continue an interrupted run
    .venv/bin/python scripts/train_clipnerf_category.py --help       # every option

Renders the category (`langfield train clipnerf --category`), trains the conditional field (auto-decoder regime),
trains the CLIP mappers on the category's prompt library with langfield-mini, and packs the run and its mappers
into src/langfield/methods/clipnerf/weights/CATEGORY.safetensors (float16), which `langfield edit chair ...` opens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from langfield.cli.main import run_guarded
from langfield.cli.parsing import parse
from langfield.methods.clipnerf.mappers import MapperConfig


@dataclass
class CategoryModelConfig:
    category: Literal["chair", "table", "mug"] = "chair"
    objects: int = 64
    views: int = 24
    resolution: int = 64
    steps: int = 3000
    work: Path = Path(".cache/clipnerf-category")
    """The training run lives in WORK/CATEGORY (checkpoints, dataset, mappers)."""
    out: Path | None = None
    """Default: src/langfield/methods/clipnerf/weights/CATEGORY.safetensors."""
    resume: bool = False
    mappers: MapperConfig = field(default_factory=MapperConfig)
    seed: int = 0


def main(cfg: CategoryModelConfig) -> None:
    from langfield.core.runfiles import CHECKPOINT_FILE
    from langfield.encoders import load_encoder
    from langfield.methods.clipnerf.config import ClipNerfConfig
    from langfield.methods.clipnerf.mappers import ClipMappers, train_mappers
    from langfield.methods.clipnerf.prompts import prompt_library
    from langfield.methods.registry import get_method
    from langfield.packed import pack_loaded_run
    from langfield.run import load_run
    from langfield.train.config import TrainerConfig
    from langfield.train.trainer import Trainer

    run_dir = cfg.work / cfg.category
    trainer = TrainerConfig(
        max_steps=cfg.steps,
        batch_rays=1024,
        eval_every=0,
        seed=cfg.seed,
        resume=cfg.resume and (run_dir / CHECKPOINT_FILE).is_file(),
    )
    config = ClipNerfConfig(
        output=run_dir,
        category=cfg.category,
        objects=cfg.objects,
        views=cfg.views,
        resolution=cfg.resolution,
        trainer=trainer,
    )
    finished = trainer.resume and load_run(run_dir, "cpu").step >= cfg.steps
    if not finished:
        Trainer(get_method("clipnerf"), config).train()
    run = load_run(run_dir, "cpu")
    mappers_file = run_dir / "mappers.safetensors"
    if cfg.resume and mappers_file.is_file():
        mappers, encoder_name = ClipMappers.load(mappers_file)
        info = mappers.info
    else:
        encoder = load_encoder(cfg.mappers.encoder)
        mappers, info = train_mappers(run.model, encoder, prompt_library(cfg.category), cfg.mappers)
        encoder_name = encoder.name
        mappers.save(mappers_file, encoder_name, cfg.mappers, info)
    run.config.output = run.config.data.data = Path(
        "(embedded: scripts/train_clipnerf_category.py)"
    )  # no paths of this machine
    out = cfg.out or Path("src/langfield/methods/clipnerf/weights") / f"{cfg.category}.safetensors"
    pack_loaded_run(run, out, {"mappers": mappers.state(encoder_name, cfg.mappers, info)})
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {cfg.objects} {cfg.category}s, {run.step} steps; "
        f"mapper CLIP loss {info['clip_loss_first']:.3f} → {info['clip_loss_last50']:.3f}"
    )


if __name__ == "__main__":
    config = parse(CategoryModelConfig)
    run_guarded(lambda: main(config))
