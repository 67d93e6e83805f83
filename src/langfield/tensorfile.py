"""Safetensors files with string metadata — every weight file langfield writes (encoder, prior, mappers, packed
runs). Written atomically: a temporary file in the same folder, renamed over the old one, so an interrupted write
never leaves a truncated file behind. Read with a one-line error naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from langfield.atomic import atomic_path, atomic_write
from langfield.errors import LangfieldError


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Atomically write ``tensors`` (contiguous, on the CPU) with ``metadata`` to ``path``."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def read_tensors(path: Path, what: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of the file at ``path``; an unreadable file is ``LangfieldError("PATH: not a WHAT (...)")``.
    Callers check first that the file exists, with their own hint of how to make it."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (OSError, SafetensorError) as error:
        raise LangfieldError(f"{path}: not a {what} ({str(error).splitlines()[0][:120]})") from None
    return tensors, metadata


def save_cache(path: Path, value: Any) -> None:
    """Atomically write a cache file (tensors and plain containers, ``torch.save``) under a unique temporary name,
    so two processes filling the same cache never write into one file."""
    with atomic_write(path, "wb") as handle:
        torch.save(value, handle)


def load_cache(path: Path) -> Any | None:
    """A cache file written by :func:`save_cache` (``weights_only``: tensors and containers, no code), or None
    when there is none; a damaged one is removed and None returned, so it is rebuilt, never trusted."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated or foreign: torch raises many types
        path.unlink(missing_ok=True)
        return None
