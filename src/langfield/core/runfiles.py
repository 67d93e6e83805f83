"""The files of a run folder, and reading its ``config.json`` (method name and config tree) without knowing the
methods: the trainer checks a run it resumes with it, :mod:`langfield.run` turns it into a config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langfield.configio import from_dict
from langfield.data.jsonio import read_json
from langfield.errors import LangfieldError

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pt"
#: marks a folder as a langfield run from its first moment (before config.json and the first checkpoint exist)
RUN_MARKER = ".langfield-run"
LOG_FILE = "train_log.jsonl"
SUMMARY_FILE = "train_summary.json"
METRICS_FILE = "metrics.json"
#: what a run folder's training writes: replaced by --overwrite
RUN_FILES = (CHECKPOINT_FILE, CONFIG_FILE, LOG_FILE, SUMMARY_FILE, METRICS_FILE)


def read_run_file(path: Path) -> tuple[str, dict[str, Any]]:
    """(method name, config tree as saved) of the run folder ``path``; a one-line error if it is not one."""
    path = Path(path)
    config_path = path / CONFIG_FILE
    if not path.is_dir() or not config_path.is_file():
        raise LangfieldError(f"{path}: not a langfield run (no {CONFIG_FILE})")
    saved = read_json(config_path)
    if (
        not isinstance(saved, dict)
        or not isinstance(saved.get("method"), str)
        or not isinstance(saved.get("config"), dict)
    ):
        raise LangfieldError(f"{config_path}: malformed run config (needs 'method' and 'config')")
    return saved["method"], saved["config"]


def config_from_saved(config_class: type, saved: dict[str, Any], path: Path) -> Any:
    """The config of ``config_class`` from the tree saved in the run folder ``path``; one line if it does not fit."""
    try:
        return from_dict(config_class, saved)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise LangfieldError(f"{Path(path) / CONFIG_FILE}: malformed run config ({exc})") from None
