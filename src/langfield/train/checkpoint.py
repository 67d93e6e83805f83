"""Atomic checkpoints: written to a temporary file in the same folder, flushed, then renamed over the old one,
so an interrupted write never leaves a truncated checkpoint behind."""

from __future__ import annotations

from pathlib import Path

import torch

from langfield.atomic import atomic_write
from langfield.errors import LangfieldError

FORMAT = "langfield-checkpoint"
VERSION = 1


def save_checkpoint(path: Path, payload: dict) -> None:
    with atomic_write(path, "wb") as handle:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, handle)


def load_checkpoint(path: Path, method: str | None = None, map_location: str | torch.device = "cpu") -> dict:
    """Load and validate a checkpoint; a missing, corrupt or foreign file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise LangfieldError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise LangfieldError(f"{path}: corrupt or unreadable checkpoint ({reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise LangfieldError(f"{path}: not a langfield checkpoint")
    if payload.get("version") != VERSION:
        raise LangfieldError(
            f"{path}: checkpoint version {payload.get('version')} is not supported (expected {VERSION})"
        )
    if method is not None and payload.get("method") != method:
        raise LangfieldError(f"{path}: checkpoint of method '{payload.get('method')}', not '{method}'")
    return payload
