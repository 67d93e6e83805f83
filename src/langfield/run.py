"""A run folder: ``config.json`` (method + config tree) and ``checkpoint.pt``; loading one gives a ready model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langfield.configio import from_dict
from langfield.core import MethodSpec, Model, SceneInfo, resolve_device
from langfield.core.model import load_weights
from langfield.core.runfiles import CHECKPOINT_FILE, config_from_saved, read_run_file
from langfield.errors import LangfieldError
from langfield.methods.registry import get_method
from langfield.packed import packed_file, read_packed
from langfield.train.checkpoint import load_checkpoint


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


def read_run_config(path: Path) -> tuple[MethodSpec, Any]:
    method, saved = read_run_file(path)
    spec = get_method(method)
    return spec, config_from_saved(spec.config, saved, Path(path))


def check_run(path: Path) -> None:
    """A one-line error unless ``path`` is a run folder, a packed run file or the name of a shipped run (cheap: the
    check commands make before they write anything)."""
    packed = packed_file(path)
    if packed is None:
        read_run_config(path)
    elif not packed.is_file():
        raise LangfieldError(f"{packed}: no such packed run")


def load_run(path: Path, device: str = "auto") -> Run:
    """A run folder, a packed run file (.safetensors) or the name of a run shipped with langfield (e.g. ``chair``)."""
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
    model = spec.build_model(config.model, scene)
    load_weights(model, payload["model"], source, spec.name, "retrain the run")
    model.to(resolve_device(device)).eval()
    return Run(Path(path), spec, config, model, scene, int(payload["step"]), attachments)
