"""Reading JSON files with one-line errors that name the file and the field."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from langfield.errors import LangfieldError

#: the largest JSON file read (a transforms.json of 100,000 frames is about 60 MB)
MAX_JSON_BYTES = 256 * 1024 * 1024


def read_json(path: Path) -> dict:
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise LangfieldError(
                f"{path}: {size:,} bytes is too large for a JSON file of langfield's (limit {MAX_JSON_BYTES:,})"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise LangfieldError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LangfieldError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LangfieldError(f"{path}: malformed JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise LangfieldError(f"{path}: malformed JSON (nested too deeply)") from None
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


def number(value: Any, where: str, key: str) -> float:
    """A finite JSON number (not a boolean) as a float; a one-line error naming the field otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LangfieldError(f"{where}: field '{key}' must be a number, got {type(value).__name__}")
    try:
        result = float(value)
    except OverflowError:
        raise LangfieldError(f"{where}: field '{key}' is too large") from None
    if not math.isfinite(result):
        raise LangfieldError(f"{where}: field '{key}' must be finite, got {value!r}")
    return result


def string_list(value: Any, where: str, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LangfieldError(f"{where}: field '{key}' must be a list of file names")
    return value
