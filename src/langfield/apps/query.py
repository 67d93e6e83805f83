"""Opening a trained ``lerf`` run for text queries (application level: it loads runs, which the method does not)."""

from __future__ import annotations

from pathlib import Path

from langfield.errors import LangfieldError
from langfield.methods.lerf.query import LanguageQuery
from langfield.run import load_run, read_run_config


def open_query(
    path: Path,
    device: str = "auto",
    canonical: tuple[str, ...] | None = None,
    fractions: tuple[float, ...] | None = None,
    smoothing: float | None = None,
) -> LanguageQuery:
    """Queries on the run at ``path``; the options override the run's query settings."""
    spec, _ = read_run_config(Path(path))
    if spec.name != "lerf":
        raise LangfieldError(f"{path}: a '{spec.name}' run; queries need a 'lerf' run (langfield train lerf ...)")
    return LanguageQuery(load_run(path, device).model, canonical, fractions, smoothing)
