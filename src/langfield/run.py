"""A run folder: ``config.json`` (method + config tree) and ``checkpoint.pt``; loading one gives a ready model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from langfield.configio import from_dict
from langfield.data.jsonio import read_json
from langfield.errors import LangfieldError
from langfield.methods.base import Model, SceneInfo
from langfield.methods.registry import MethodSpec, get_method
from langfield.train.checkpoint import load_checkpoint

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pt"


@dataclass
class Run:
    path: Path
    method: MethodSpec
    config: Any
    model: Model
    scene: SceneInfo
    step: int
    #: a packed run's attachments (name → (tensors, metadata)), e.g. a clipnerf run's mappers; empty for run folders
    attachments: dict = field(default_factory=dict)


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise LangfieldError(f"unknown device '{name}'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LangfieldError(f"device '{name}' requested but CUDA is not available")
    return device


def read_run_config(path: Path) -> tuple[MethodSpec, Any]:
    path = Path(path)
    config_path = path / CONFIG_FILE
    if not path.is_dir() or not config_path.is_file():
        raise LangfieldError(f"{path}: not a langfield run (no {CONFIG_FILE})")
    saved = read_json(config_path)
    try:
        spec = get_method(saved["method"])
        config = from_dict(spec.config, saved["config"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise LangfieldError(f"{config_path}: malformed run config ({exc})") from None
    return spec, config


def check_run(path: Path) -> None:
    """A one-line error unless ``path`` is a run folder, a packed run file or the name of a shipped run (cheap: the
    check commands make before they write anything)."""
    from langfield.packed import packed_file

    packed = packed_file(path)
    if packed is None:
        read_run_config(path)
    elif not packed.is_file():
        raise LangfieldError(f"{packed}: no such packed run")


def load_run(path: Path, device: str = "auto") -> Run:
    """A run folder, a packed run file (.safetensors) or the name of a run shipped with langfield (e.g. ``chair``)."""
    from langfield.packed import packed_file, read_packed

    packed = packed_file(path)
    attachments: dict = {}
    if packed is not None:
        payload = read_packed(packed)
        spec = get_method(payload["method"])
        config = from_dict(spec.config, payload["config"])
        attachments = payload["attachments"]
        source = packed
    else:
        spec, config = read_run_config(path)
        source = Path(path) / CHECKPOINT_FILE
        payload = load_checkpoint(source, method=spec.name)
    scene = SceneInfo.from_state(payload["scene"])
    model = spec.model_class()(config.model, scene)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:  # missing / unexpected / mis-shaped weights: another version of the method
        detail = " ".join(str(exc).split("\n", 2)[1:2]).strip() or str(exc).splitlines()[0]
        raise LangfieldError(f"{source}: does not match this version of '{spec.name}' ({detail[:160]}); retrain the run") from None
    model.to(resolve_device(device)).eval()
    return Run(Path(path), spec, config, model, scene, int(payload["step"]), attachments)
