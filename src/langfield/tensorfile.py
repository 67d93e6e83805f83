"""Safetensors files with string metadata — every weight file langfield writes (encoder, prior, mappers, packed
runs). Written atomically: a temporary file in the same folder, renamed over the old one, so an interrupted write
never leaves a truncated file behind. Read with a one-line error naming the file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from langfield.errors import LangfieldError


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Atomically write ``tensors`` (contiguous, on the CPU) with ``metadata`` to ``path`` (mode 0644)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
