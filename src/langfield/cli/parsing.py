"""Every command's options go through :func:`parse`: tyro turns the command line into the config tree, then the
numeric bounds declared on its fields (:mod:`langfield.checks`) are checked, so a bad value is one line before any
work starts."""

from __future__ import annotations

from typing import Any, TypeVar

import tyro

from langfield.checks import validate

T = TypeVar("T")


def parse(cls: type[T], argv: list[str] | None = None, prog: str | None = None, **options: Any) -> T:
    """``cls`` from ``argv`` (default: the process's arguments), its bounds checked."""
    return validate(tyro.cli(cls, args=argv, prog=prog, **options))
