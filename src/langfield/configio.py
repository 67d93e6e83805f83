"""Config dataclasses to and from JSON-friendly dicts (saved with every run)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any


def to_dict(config: Any) -> Any:
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, Path):
        return str(config)
    return config


def _convert(annotation: Any, value: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _convert(typing.get_args(annotation)[0], value)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _convert(options[0], value) if len(options) == 1 else value
    if dataclasses.is_dataclass(annotation) and isinstance(value, dict):
        return from_dict(typing.cast(type, annotation), value)
    if annotation is Path or (isinstance(annotation, type) and issubclass(annotation, Path)):
        return Path(value)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


def from_dict(cls: type, data: dict) -> Any:
    hints = typing.get_type_hints(cls, include_extras=True)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name])
    return cls(**kwargs)


def dumps(config: Any) -> str:
    return json.dumps(to_dict(config), indent=2)
