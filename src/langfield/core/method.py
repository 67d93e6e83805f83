"""A method's entry in the table of methods: its name, config class (torch-free) and where its model is built."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from langfield.core.model import Model
from langfield.core.scene import SceneInfo
from langfield.errors import LangfieldError


def _resolve(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    config: type
    model: str
    """"module:callable" building the model from the model config and the scene (a class or a function choosing
    one, e.g. by regime); imported on first use, so the CLI reads the table without torch models."""
    summary: str
    prepare: str | None = None
    """"module:function" called with the config before training: makes what the config asks for (a procedural
    category's dataset) and points the config at it."""
    scene: str | None = None
    """"module:function" giving the scene of a method that trains without a dataset (text-to-3D) from its model
    config."""

    def build_model(self, model_config: Any, scene: SceneInfo) -> Model:
        return _resolve(self.model)(model_config, scene)

    def initial_scene(self, model_config: Any) -> SceneInfo:
        if self.scene is None:
            raise LangfieldError(f"method '{self.name}' trains on a dataset (--data)")
        return _resolve(self.scene)(model_config)

    def prepare_config(self, config: Any) -> None:
        if self.prepare is not None:
            _resolve(self.prepare)(config)
