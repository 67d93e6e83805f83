"""Reading JSON files with one-line errors that name the file and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langfield.errors import LangfieldError


def read_json(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as exc:
        raise LangfieldError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LangfieldError(f"{path}: malformed JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(value, dict):
        raise LangfieldError(f"{path}: expected a JSON object at the top level")
    return value


def require(mapping: dict, key: str, where: str, kind: type | tuple[type, ...] = object) -> Any:
    if key not in mapping:
        raise LangfieldError(f"{where}: missing field '{key}'")
    value = mapping[key]
    if kind is not object and (not isinstance(value, kind) or isinstance(value, bool)):
        raise LangfieldError(f"{where}: field '{key}' has the wrong type ({type(value).__name__})")
    return value
