"""Device resolution: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``, ..."""

from __future__ import annotations

import torch

from langfield.errors import LangfieldError


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
