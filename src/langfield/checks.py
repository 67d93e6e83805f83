"""Range checks of numeric options, declared beside each field and validated once, right after parsing.

A config field carries its bounds in its type::

    resolution: Annotated[int, at_least(2)] = 160

:func:`validate` walks a config tree (the one tyro builds from the command line, or one built in Python) and
raises :class:`~langfield.errors.LangfieldError` naming the option as the user typed it (``--model.resolution``,
or ``--max-steps`` for a group whose prefix is omitted) and the value. ``None`` (an unset optional) passes; tuples
are checked element by element; every float must be finite. Torch-free, like the configs.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

from langfield.errors import LangfieldError


@dataclass(frozen=True)
class Check:
    """Bounds of a number (or of each number of a tuple): ``lo`` / ``hi`` inclusive unless ``*_open``;
    ``ordered``: a tuple's values must not decrease (a (low, high) range, growth milestones)."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    ordered: bool = False
    nonempty: bool = False

    def describe(self) -> str:
        if self.lo is not None and self.hi is not None:
            left, right = "(" if self.lo_open else "[", ")" if self.hi_open else "]"
            return f"in {left}{_fmt(self.lo)}, {_fmt(self.hi)}{right}"
        if self.lo is not None:
            if self.lo_open:
                return "positive" if self.lo == 0 else f"greater than {_fmt(self.lo)}"
            return f"at least {_fmt(self.lo)}"
        if self.hi is not None:
            return f"{'below' if self.hi_open else 'at most'} {_fmt(self.hi)}"
        return "a finite number"

    def check(self, flag: str, value: Any) -> None:
        if value is None:
            return
        values = list(value) if isinstance(value, (tuple, list)) else [value]
        if self.nonempty and not values:
            raise LangfieldError(f"{flag} needs at least one value")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise LangfieldError(f"{flag} must be a number, got {v!r}")
            if not math.isfinite(v) or not self._inside(v):
                shown = _fmt(v) if len(values) == 1 else f"{_fmt(v)} in {tuple(values)}"
                raise LangfieldError(f"{flag} must be {self.describe()}, got {shown}")
        if self.ordered and any(b < a for a, b in zip(values, values[1:])):
            raise LangfieldError(f"{flag} must be in increasing order (low, high), got {tuple(values)}")

    def _inside(self, v: float) -> bool:
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        if self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi):
            return False
        return True


def _fmt(v: float) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() and abs(v) < 1e15 else str(v)


def at_least(n: float, ordered: bool = False, nonempty: bool = False) -> Check:
    return Check(lo=n, ordered=ordered, nonempty=nonempty)


def positive(ordered: bool = False, nonempty: bool = False) -> Check:
    return Check(lo=0, lo_open=True, ordered=ordered, nonempty=nonempty)


def between(
    lo: float, hi: float, lo_open: bool = False, hi_open: bool = False, ordered: bool = False, nonempty: bool = False
) -> Check:
    return Check(lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, ordered=ordered, nonempty=nonempty)


def finite(ordered: bool = False) -> Check:
    return Check(ordered=ordered)


#: [0, inf): weights, learning rates (0 freezes), counts that may be zero
NON_NEGATIVE = Check(lo=0)
#: [0, 1]: probabilities, colours
UNIT = Check(lo=0, hi=1)
#: [0, 1): thresholds of opacity / transmittance
UNIT_OPEN = Check(lo=0, hi=1, hi_open=True)
#: (0, 1]: fractions of an image or of a run
FRACTION = Check(lo=0, hi=1, lo_open=True)
#: a seed: any non-negative integer
SEED = Check(lo=0)
#: degrees of elevation
ELEVATION = Check(lo=-90, hi=90)


def check_of(annotation: Any) -> Check | None:
    """The :class:`Check` in an ``Annotated[...]`` type, if any."""
    if typing.get_origin(annotation) is typing.Annotated:
        for meta in typing.get_args(annotation)[1:]:
            if isinstance(meta, Check):
                return meta
    return None


def _omits_prefix(annotation: Any) -> bool:
    if typing.get_origin(annotation) is not typing.Annotated:
        return False
    import tyro

    return any(meta is tyro.conf.OmitArgPrefixes for meta in typing.get_args(annotation)[1:])


def flag_name(prefix: str, name: str) -> str:
    return "--" + (prefix + name).replace("_", "-")


def validate(config: Any, prefix: str = "") -> Any:
    """Check every :class:`Check`-annotated field of the dataclass tree ``config``, then the rules between options
    of each dataclass that declares them (``check_relations(flag)``, with ``flag(name)`` the option's flag as
    typed); returns ``config``."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        return config
    hints = typing.get_type_hints(type(config), include_extras=True)
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        annotation = hints.get(f.name)
        if dataclasses.is_dataclass(value):
            validate(value, prefix if _omits_prefix(annotation) else f"{prefix}{f.name}.")
            continue
        check = check_of(annotation)
        if check is not None:
            check.check(flag_name(prefix, f.name), value)
    relations = getattr(config, "check_relations", None)
    if callable(relations):
        relations(lambda name: flag_name(prefix, name))
    return config
