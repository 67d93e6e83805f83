"""A run in one safetensors file: the model's weights (float16), its scene, its config, and named attachments (e.g. a
clipnerf run's mappers) — how the project ships trained models inside the package. ``load_run`` opens these like
run folders: ``langfield edit chair "a red chair"`` uses the embedded chair model.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch

from langfield.errors import LangfieldError
from langfield.tensorfile import read_tensors, write_tensors

#: name → (package, file): the trained runs shipped with langfield (made by scripts/train_clipnerf_category.py)
EMBEDDED_RUNS = {"chair": ("langfield.methods.clipnerf", "weights/chair.safetensors")}


def embedded_run(name: str) -> Path | None:
    if name not in EMBEDDED_RUNS:
        return None
    package, file = EMBEDDED_RUNS[name]
    return Path(str(resources.files(package) / file))


def packed_file(path: Path) -> Path | None:
    """The packed run ``path`` names: a .safetensors file, or the name of an embedded run; None for a run folder."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return path
    if not path.exists() and embedded_run(str(path)) is not None:
        return embedded_run(str(path))
    return None


def _half(tensor: torch.Tensor) -> torch.Tensor:
    return (
        (tensor.half() if tensor.is_floating_point() and tensor.dtype == torch.float32 else tensor)
        .detach()
        .cpu()
        .contiguous()
    )


def pack_run(
    out: Path,
    method: str,
    config: dict,
    model_state: dict,
    scene_state: dict,
    step: int,
    attachments: dict[str, tuple[dict[str, torch.Tensor], dict[str, str]]] | None = None,
) -> None:
    """Atomically write a packed run. ``attachments``: name → (tensors, string metadata)."""
    tensors = {f"model.{k}": _half(v) for k, v in model_state.items()}
    scene_meta = {}
    for key, value in scene_state.items():
        if isinstance(value, torch.Tensor):
            tensors[f"scene.{key}"] = value.detach().float().cpu().contiguous()  # cameras stay exact
        else:
            scene_meta[key] = value
    attached = {}
    for name, (extra, meta) in (attachments or {}).items():
        tensors.update({f"{name}.{k}": v.detach().cpu().contiguous() for k, v in extra.items()})
        attached[name] = meta
    metadata = {
        "format": "langfield-packed-run",
        "method": method,
        "config": json.dumps(config),
        "scene": json.dumps(scene_meta),
        "step": str(step),
        "attachments": json.dumps(attached),
    }
    write_tensors(out, tensors, metadata)


def pack_loaded_run(run, out: Path, attachments: dict | None = None) -> None:
    """Pack a loaded :class:`~langfield.run.Run` (its config, weights, scene and step)."""
    from langfield.configio import to_dict

    pack_run(
        out, run.method.name, to_dict(run.config), run.model.state_dict(), run.scene.state(), run.step, attachments
    )


def read_packed(path: Path) -> dict:
    """{method, config (dict), model (state), scene (state), step, attachments: name → (tensors, metadata)}."""
    path = Path(path)
    if not path.is_file():
        raise LangfieldError(f"{path}: no such packed run")
    tensors, metadata = read_tensors(path, "packed langfield run")
    try:
        if metadata.get("format") != "langfield-packed-run":
            raise KeyError("format")
        attachments = json.loads(metadata["attachments"])
        out = {
            "method": metadata["method"],
            "config": json.loads(metadata["config"]),
            "step": int(metadata["step"]),
            "model": {k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
            "scene": {
                **json.loads(metadata["scene"]),
                **{k[6:]: v for k, v in tensors.items() if k.startswith("scene.")},
            },
            "attachments": {
                name: ({k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}, meta)
                for name, meta in attachments.items()
            },
        }
    except (ValueError, KeyError) as error:
        raise LangfieldError(f"{path}: not a packed langfield run ({error})") from None
    return out
