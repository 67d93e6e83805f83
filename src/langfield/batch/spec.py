"""A batch spec (TOML): a grid of ``langfield`` commands, expanded into jobs.

.. code-block:: toml

    [batch]
    output = "runs/sweep"   # the batch folder (default: beside the spec, named after it)
    cpus = 1                # per job, unless the job says otherwise
    gpus = 0

    [[job]]
    command = "train nerf"
    name = "lego-{seed}"    # default: the command and the values that vary
    options = { data = "../shared/data/lego", downscale = 8, max-steps = 1000, seed = [0, 1, 2] }
    then = ["eval {output}"]

A list value of an option, or of a ``grid`` variable (not passed as an option), expands: a job per element, the
product over all lists; an element that is itself a list gives one option several values (``grow-at = [[800,
1800]]``). ``true`` is a flag, ``false`` its ``--no-`` form; dotted keys (``model.resolution = 64``) are options of
the nested config. ``{var}`` in names, options, ``args`` (positional arguments) and ``then`` (commands run after the
job's own) is a grid variable, an option's value, ``{name}`` or ``{output}``: the job's run folder, ``BATCH/NAME``
unless its options name another (``output`` or ``out``). A command that writes a run (``train``, ``generate``) gets
``--output`` from it. Paths are read as the command line would read them in the folder ``langfield batch`` runs in.
"""

from __future__ import annotations

import itertools
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from langfield.errors import LangfieldError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: where a batch keeps each job's status and log, inside the batch folder (not a job name)
STATE_FOLDER = "_batch"
JOB_KEYS = ("command", "name", "args", "options", "grid", "then", "cpus", "gpus")
BATCH_KEYS = ("output", "cpus", "gpus")
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.\-]+)\}")
_SAFE = re.compile(r"[^A-Za-z0-9._\-]+")


@dataclass
class Job:
    """One expanded job: a ``langfield`` command line (and the ones that follow it) with its resources."""

    name: str
    argv: list[str]
    """The command line after ``langfield``."""
    output: Path
    """The job's run folder."""
    then: list[list[str]] = field(default_factory=list)
    cpus: float = 1.0
    gpus: float = 0.0
    writes: bool = True
    """Whether the command writes ``output`` (``--output`` / ``--out``): a finished job whose folder is gone runs
    again."""

    @property
    def commands(self) -> list[list[str]]:
        return [self.argv, *self.then]

    def describe(self) -> str:
        return " && ".join("langfield " + shlex.join(c) for c in self.commands)


@dataclass
class Batch:
    path: Path
    output: Path
    jobs: list[Job]


def _resources(table: dict, key: str, default: float, where: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise LangfieldError(f"{where}: {key} = {value!r} must be a number >= 0")
    return float(value)


def _fill(text: str, values: dict[str, str], where: str) -> str:
    def one(match: re.Match) -> str:
        key = match.group(1)
        if key not in values:
            known = ", ".join(sorted(values))
            raise LangfieldError(f"{where}: unknown placeholder {{{key}}} (known here: {known})")
        return values[key]

    return _PLACEHOLDER.sub(one, text)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_value(value: Any, where: str, nested: bool = False) -> None:
    if isinstance(value, (str, int, float, bool)):
        return
    if isinstance(value, list) and not nested:
        for item in value:
            if isinstance(item, list):
                for inner in item:
                    _check_value(inner, where, nested=True)
            else:
                _check_value(item, where, nested=True)
        return
    raise LangfieldError(f"{where}: {value!r} is not a string, number, boolean or list of them")


def _flatten(options: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _option_tokens(key: str, value: Any, fill: Callable[[str], str]) -> list[str]:
    flag = "--" + key.removeprefix("--")
    if value is True:
        return [flag]
    if value is False:
        parts = flag[2:].split(".")
        parts[-1] = "no-" + parts[-1]
        return ["--" + ".".join(parts)]
    if isinstance(value, list):  # several values of one option
        return [flag, *(fill(_text(v)) for v in value)]
    return [flag, fill(_text(value))]


def _expand_job(
    index: int,
    table: dict,
    batch_output: Path,
    defaults: dict[str, float],
    output_option: Callable[[list[str]], str | None],
) -> list[Job]:
    where = f"job {index + 1}"
    if not isinstance(table, dict):
        raise LangfieldError(f"{where}: a [[job]] must be a table")
    unknown = sorted(set(table) - set(JOB_KEYS))
    if unknown:
        raise LangfieldError(f"{where}: unknown key '{unknown[0]}' (a job has: {', '.join(JOB_KEYS)})")
    command = table.get("command")
    if isinstance(command, str):
        words = shlex.split(command)
    elif isinstance(command, list) and all(isinstance(w, str) for w in command):
        words = list(command)
    else:
        raise LangfieldError(f'{where}: needs command = "..." (e.g. "train nerf")')
    if not words:
        raise LangfieldError(f"{where}: the command is empty")
    if isinstance(table.get("name"), str):
        where = f"job '{table['name']}'"
    options, grid = table.get("options", {}), table.get("grid", {})
    args, then = table.get("args", []), table.get("then", [])
    kinds = (("options", options, dict), ("grid", grid, dict), ("args", args, list), ("then", then, list))
    for key, value, kind in kinds:
        if not isinstance(value, kind):
            raise LangfieldError(f"{where}: {key} must be a {'table' if kind is dict else 'list'}")
    options = _flatten(options)  # TOML's dotted keys (model.resolution = 64) are nested tables
    for key, value in {**grid, **options}.items():
        _check_value(value, f"{where}, {key}")
    if not all(isinstance(a, (str, int, float)) for a in args):
        raise LangfieldError(f"{where}: args must be strings or numbers")
    if not all(isinstance(t, str) for t in then):
        raise LangfieldError(f"{where}: then must be a list of command lines (strings)")
    cpus = _resources(table, "cpus", defaults["cpus"], where)
    gpus = _resources(table, "gpus", defaults["gpus"], where)

    # the axes of the grid: grid variables, then options with a list of values (a list of lists: one value each)
    axes: list[tuple[str, list[Any]]] = [(k, v if isinstance(v, list) else [v]) for k, v in grid.items()]
    axes += [(k, v) for k, v in options.items() if isinstance(v, list)]
    for key, values in axes:
        if not values:
            raise LangfieldError(f"{where}: {key} is an empty list (no job)")
    varying = [key for key, values in axes if len(values) > 1]
    jobs = []
    for combination in itertools.product(*(values for _, values in axes)):
        chosen = dict(zip((key for key, _ in axes), combination))
        settings = {k: chosen.get(k, v) for k, v in options.items()}
        values = {k: _text(v) for k, v in {**chosen, **settings}.items() if not isinstance(v, list)}
        if "name" in table:
            if not isinstance(table["name"], str):
                raise LangfieldError(f"{where}: name must be a string")
            name = _fill(table["name"], values, where)
        else:
            name = "-".join(words + [f"{k.split('.')[-1]}{_text(chosen[k])}" for k in varying])
        name = _SAFE.sub("_", name).strip("._") or f"job{index + 1}"
        if name == STATE_FOLDER:
            raise LangfieldError(f"{where}: '{STATE_FOLDER}' is the batch's own folder; name the job otherwise")
        values["name"] = name
        option = output_option(words)  # given by the batch when the job does not name its folder
        named = next((k for k in (option, "output", "out") if k and k in settings), None)
        given = settings[named] if named else None
        output = Path(_fill(_text(given), values, where)) if given is not None else batch_output / name
        values["output"] = str(output)
        here = f"job '{name}'"

        def fill(text: str, here: str = here, values: dict = values) -> str:
            return _fill(text, values, here)

        argv = [fill(w) for w in words] + [fill(_text(a)) for a in args]
        for key, value in settings.items():
            argv += _option_tokens(key, value, fill)
        if option and given is None:
            argv += [f"--{option}", str(output)]
        follow = [[fill(w) for w in shlex.split(line)] for line in then]
        jobs.append(Job(name, argv, output, follow, cpus, gpus, writes=bool(option or named)))
    return jobs


def load_batch(path: Path, output_option: Callable[[list[str]], str | None]) -> Batch:
    """The jobs of the spec at ``path``; ``output_option(command words)`` names the option through which a command
    writes its run folder (None: it has none). Any mistake is one line naming the spec and the job."""
    path = Path(path)
    if not path.is_file():
        raise LangfieldError(f"{path}: no such batch spec")
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LangfieldError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(spec) - {"batch", "job"})
    if unknown:
        raise LangfieldError(f"{path}: unknown table '{unknown[0]}' (a spec has [batch] and [[job]] tables)")
    head = spec.get("batch", {})
    if not isinstance(head, dict):
        raise LangfieldError(f"{path}: [batch] must be a table")
    extra = sorted(set(head) - set(BATCH_KEYS))
    if extra:
        raise LangfieldError(f"{path}: [batch] has an unknown key '{extra[0]}' (it has: {', '.join(BATCH_KEYS)})")
    output = head.get("output", str(path.with_suffix("")))
    if not isinstance(output, str) or not output:
        raise LangfieldError(f"{path}: [batch] output must be a folder name")
    where = f"{path}: [batch]"
    defaults = {"cpus": _resources(head, "cpus", 1.0, where), "gpus": _resources(head, "gpus", 0.0, where)}
    tables = spec.get("job", [])
    if not isinstance(tables, list) or not tables:
        raise LangfieldError(f"{path}: no jobs (add [[job]] tables with a command)")
    jobs: list[Job] = []
    try:
        for index, table in enumerate(tables):
            jobs += _expand_job(index, table, Path(output), defaults, output_option)
    except LangfieldError as exc:
        raise LangfieldError(f"{path}: {exc}") from None
    seen: dict[str, int] = {}
    for job in jobs:
        seen[job.name] = seen.get(job.name, 0) + 1
    twice = [name for name, count in seen.items() if count > 1]
    if twice:
        raise LangfieldError(
            f"{path}: {seen[twice[0]]} jobs are named '{twice[0]}': put the values that vary in the name"
        )
    outputs: dict[Path, str] = {}
    for job in jobs:
        if job.output in outputs:
            raise LangfieldError(
                f"{path}: jobs '{outputs[job.output]}' and '{job.name}' would write the same folder {job.output}"
            )
        outputs[job.output] = job.name
    return Batch(path, Path(output), jobs)
