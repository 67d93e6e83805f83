"""The table of methods: name → config class (torch-free) and the import path of its model (built on first use)."""

from __future__ import annotations

from langfield.core.method import MethodSpec
from langfield.errors import LangfieldError
from langfield.methods.clipnerf.config import ClipNerfConfig
from langfield.methods.dietnerf.config import DietNerfConfig
from langfield.methods.dreamfusion.config import DreamFusionConfig
from langfield.methods.lerf.config import LerfConfig
from langfield.methods.nerf.config import NerfConfig
from langfield.methods.vanilla_nerf.config import SimplifiedNerfConfig, VanillaNerfConfig

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
        MethodSpec(
            "lerf",
            LerfConfig,
            "langfield.methods.lerf.model:LerfModel",
            "language-embedded radiance field: query a scene with text",
        ),
        MethodSpec(
            "dietnerf",
            DietNerfConfig,
            "langfield.methods.dietnerf.model:DietNerfModel",
            "few-shot nerf: semantic consistency of renders from random poses",
        ),
        MethodSpec(
            "clipnerf",
            ClipNerfConfig,
            "langfield.methods.clipnerf.model:build_model",
            "a category's conditional field: shape and appearance codes per object (CLIP-NeRF)",
            prepare="langfield.methods.clipnerf.data:prepare_category",
        ),
        MethodSpec(
            "dreamfusion",
            DreamFusionConfig,
            "langfield.methods.dreamfusion.model:DreamFusionModel",
            "text-to-3D by score distillation (also: langfield generate PROMPT)",
            scene="langfield.methods.dreamfusion.model:initial_scene",
        ),
    )
}


def method_names() -> list[str]:
    return list(METHODS)


def get_method(name: str) -> MethodSpec:
    if name not in METHODS:
        raise LangfieldError(f"unknown method '{name}' (available: {', '.join(METHODS)})")
    return METHODS[name]
