"""Detect a dataset's format and parse it."""

from __future__ import annotations

from pathlib import Path

from langfield.data.config import DataConfig
from langfield.data.dataset import Dataset, choose_views
from langfield.errors import LangfieldError


def detect_format(folder: Path) -> str:
    if not folder.exists():
        raise LangfieldError(f"{folder}: no such dataset folder")
    if not folder.is_dir():
        raise LangfieldError(f"{folder}: not a folder")
    if any((folder / f"transforms_{s}.json").is_file() for s in ("train", "val", "test")):
        return "blender"
    if (folder / "transforms.json").is_file():
        return "nerfstudio"
    if (folder / "poses_bounds.npy").is_file():
        return "llff"
    raise LangfieldError(
        f"{folder}: no dataset found (expected transforms_train.json, transforms.json or poses_bounds.npy)"
    )


def load_dataset(config: DataConfig) -> Dataset:
    """Parse the dataset ``config.data`` in its detected (or given) format, keeping the few-shot training views
    of ``num_views`` / ``view_ids`` when given."""
    from langfield.data.blender import parse_blender
    from langfield.data.llff import parse_llff
    from langfield.data.nerfstudio import parse_nerfstudio

    folder = Path(config.data)
    fmt = detect_format(folder) if config.format == "auto" else config.format
    if not folder.is_dir():
        raise LangfieldError(f"{folder}: no such dataset folder")
    parser = {"blender": parse_blender, "nerfstudio": parse_nerfstudio, "llff": parse_llff}[fmt]
    dataset = parser(config)
    dataset.train_indices = choose_views(
        dataset.train_indices, config.num_views, config.view_ids, config.view_seed, len(dataset)
    )
    return dataset
