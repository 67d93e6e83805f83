"""``langfield batch SPEC.toml``: a grid of langfield commands as Ray tasks (see :mod:`langfield.batch`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import tyro

from langfield.checks import at_least
from langfield.cli.parsing import check_command, parse
from langfield.errors import LangfieldError

#: commands that write a run folder, and the option that names it (the batch gives each job its own)
RUN_OUTPUT = {"train": "output", "generate": "output"}


@dataclass
class BatchArgs:
    """Run every job of SPEC.toml as a Ray task: a local Ray by default, a cluster with --address. Jobs that
    finished in an earlier run of the same spec are skipped; the table of all of them is BATCH/batch.md
    and BATCH/batch.csv."""

    spec: tyro.conf.Positional[Path]
    address: Optional[str] = None
    """A running Ray cluster (HOST:PORT of its head, `auto`, or ray://HOST:10001); default: a local Ray in this
    process."""
    num_cpus: Annotated[Optional[int], at_least(1)] = None
    """CPUs of the local Ray (default: all of this machine's); jobs run at once as far as their `cpus` allow."""
    dry_run: bool = False
    """List the jobs and their command lines, check them, run nothing."""


def output_option(words: list[str]) -> str | None:
    return RUN_OUTPUT.get(words[0]) if words else None


def check_job(argv: list[str]) -> None:
    """A job's command line, parsed by its command without running it."""
    from langfield.cli.main import COMMANDS, _load

    if not argv:
        raise LangfieldError("empty command")
    name = argv[0]
    if name == "batch":
        raise LangfieldError("a batch job cannot be another batch")
    if name not in COMMANDS:
        raise LangfieldError(f"unknown command '{name}' (available: {', '.join(c for c in COMMANDS if c != 'batch')})")
    check_command(lambda: _load(COMMANDS[name][0])(argv[1:]))


def batch(argv: list[str]) -> None:
    args = parse(BatchArgs, argv, "langfield batch")
    from langfield.batch import load_batch, run_batch
    from langfield.ui import console

    spec = load_batch(args.spec, output_option)
    for job in spec.jobs:  # every job's command line is checked before any starts
        for number, command in enumerate(job.commands):
            try:
                check_job(command)
            except LangfieldError as exc:
                which = "" if number == 0 else f" (then: {command[0]})"
                raise LangfieldError(f"{args.spec}: job '{job.name}'{which}: {exc}") from None
    if args.dry_run:
        for job in spec.jobs:
            console.print(f"{job.name} [{job.cpus:g} CPU, {job.gpus:g} GPU]: {job.describe()}")
        console.print(f"{len(spec.jobs)} jobs, all valid; the batch folder would be {spec.output}")
        return
    run_batch(spec, args.address, args.num_cpus)
