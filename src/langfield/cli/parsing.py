"""Every command's options go through :func:`parse`: tyro turns the command line into the config tree, then the
numeric bounds declared on its fields (:mod:`langfield.checks`) are checked, so a bad value is one line before any
work starts.

:func:`check_command` parses a command line without running it (``langfield batch`` checks every job before any
starts): inside it, :func:`parse` stops the command with :class:`Parsed` as soon as its options are read."""

from __future__ import annotations

import contextlib
import io
import re
from typing import Any, Callable, TypeVar

import tyro

from langfield.checks import validate
from langfield.errors import LangfieldError

T = TypeVar("T")
_checking = False
_BOX = re.compile(r"[\u2500-\u257f]+")


class Parsed(Exception):
    """Raised by :func:`parse` under :func:`check_command`: the options were read and are valid."""


def _tyro_message(text: str) -> str:
    """The point of tyro's boxed usage error, on one line."""
    lines = [_BOX.sub("", line).strip(" |-+=") for line in text.splitlines()]
    lines = [line for line in lines if any(c.isalnum() for c in line) and not line.startswith("For full helptext")]
    if len(lines) > 1:  # the box's title ("Value error"), then what it is about
        lines = lines[1:]
    return lines[0][:300] if lines else "invalid options"


def parse(cls: type[T], argv: list[str] | None = None, prog: str | None = None, **options: Any) -> T:
    """``cls`` from ``argv`` (default: the process's arguments), its bounds checked."""
    if not _checking:
        return validate(tyro.cli(cls, args=argv, prog=prog, **options))
    if argv is not None and ("-h" in argv or "--help" in argv):
        raise LangfieldError("asks for --help")
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(captured):
            validate(tyro.cli(cls, args=argv, prog=prog, **options))
    except SystemExit:
        raise LangfieldError(_tyro_message(captured.getvalue())) from None
    raise Parsed()


def check_command(run: Callable[[], object]) -> None:
    """Parse, do not run: ``run`` is a command called with its arguments, stopped once they are parsed. A bad
    command line is a :class:`LangfieldError` (tyro's message on one line)."""
    global _checking
    _checking = True
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            run()
    except Parsed:
        return
    finally:
        _checking = False
    raise LangfieldError("incomplete command (it only prints its usage)")
