"""The table of methods: name → config class (torch-free) and the import path of its model."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from langfield.errors import LangfieldError
from langfield.methods.clipnerf.config import ClipNerfConfig
from langfield.methods.dietnerf.config import DietNerfConfig
from langfield.methods.dreamfusion.config import DreamFusionConfig
from langfield.methods.lerf.config import LerfConfig
from langfield.methods.nerf.config import NerfConfig
from langfield.methods.vanilla_nerf.config import SimplifiedNerfConfig, VanillaNerfConfig


@dataclass(frozen=True)
class MethodSpec:
    name: str
    config: type
    model: str  # "module:Class"
    summary: str
    prepare: str | None = None
    """"module:function" called with the config before training: makes what the config asks for (a procedural
    category's dataset) and points the config at it."""

    def model_class(self):
        return _resolve(self.model)

    def prepare_config(self, config) -> None:
        if self.prepare is not None:
            _resolve(self.prepare)(config)


def _resolve(target: str):
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec("nerf", NerfConfig, "langfield.methods.nerf.model:NerfModel", "fast grid NeRF for CPU (default)"),
        MethodSpec(
            "vanilla-nerf",
            VanillaNerfConfig,
            "langfield.methods.vanilla_nerf.model:VanillaNerfModel",
            "the original NeRF: 8x256 MLPs, coarse + fine",
        ),
        MethodSpec(
            "simplified-nerf",
            SimplifiedNerfConfig,
            "langfield.methods.vanilla_nerf.model:VanillaNerfModel",
            "DietNeRF's simplified NeRF baseline (vanilla-nerf preset)",
        ),
        MethodSpec("lerf", LerfConfig, "langfield.methods.lerf.model:LerfModel", "language-embedded radiance field: query a scene with text"),
        MethodSpec(
            "dietnerf",
            DietNerfConfig,
            "langfield.methods.dietnerf.model:DietNerfModel",
            "few-shot nerf: semantic consistency of renders from random poses",
        ),
        MethodSpec(
            "clipnerf",
            ClipNerfConfig,
            "langfield.methods.clipnerf.model:ClipNerfModel",
            "a category's conditional field: shape and appearance codes per object (CLIP-NeRF)",
            prepare="langfield.methods.clipnerf.data:prepare_category",
        ),
        MethodSpec(
            "dreamfusion",
            DreamFusionConfig,
            "langfield.methods.dreamfusion.model:DreamFusionModel",
            "text-to-3D by score distillation (also: langfield generate PROMPT)",
        ),
    )
}


def method_names() -> list[str]:
    return list(METHODS)


def get_method(name: str) -> MethodSpec:
    if name not in METHODS:
        raise LangfieldError(f"unknown method '{name}' (available: {', '.join(METHODS)})")
    return METHODS[name]
