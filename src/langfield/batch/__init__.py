"""``langfield batch SPEC.toml``: a grid of langfield commands (a scene x method x seed sweep, many prompts) run
as Ray tasks, each job an ordinary run folder, with one table of every job's outcome.

- :mod:`~langfield.batch.spec`: the TOML spec and its expansion into jobs;
- :mod:`~langfield.batch.runner`: the jobs as Ray tasks (local or on a cluster), their status files;
- :mod:`~langfield.batch.table`: the CSV / Markdown table.
"""

from __future__ import annotations

import json
from typing import Callable

from langfield.batch.runner import Outcome, read_metrics, run_jobs, start_ray, state_path
from langfield.batch.spec import STATE_FOLDER, Batch, Job, load_batch
from langfield.batch.table import write_tables
from langfield.core.runfiles import CHECKPOINT_FILE
from langfield.errors import LangfieldError
from langfield.ui import console

__all__ = ["Batch", "Job", "Outcome", "load_batch", "run_batch", "STATE_FOLDER"]


def _finished_before(batch: Batch, job: Job) -> Outcome | None:
    """The outcome of an earlier run of the batch if ``job`` finished then, with the same command line, and its
    folder is still there."""
    try:
        record = json.loads(state_path(batch.output, job.name, ".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("status") != "done" or record.get("argv") != job.argv:
        return None
    if job.writes and not job.output.exists():
        return None
    return Outcome(job.name, "done", float(record.get("seconds", 0.0)), "", read_metrics(job.output), job.argv)


def resumes_from_checkpoint(job: Job) -> bool:
    """A training that stopped half-way continues from its checkpoint (unless the job asks for --overwrite)."""
    return (
        job.argv[0] == "train"
        and (job.output / CHECKPOINT_FILE).is_file()
        and not {"--resume", "--overwrite"} & set(job.argv)
    )


def run_batch(
    batch: Batch,
    address: str | None = None,
    num_cpus: int | None = None,
    on_start: Callable[[str], None] = console.print,
) -> list[Outcome]:
    """Run the batch's jobs that have not finished (all of them at once, as far as the cluster's resources go),
    write ``BATCH/batch.csv`` and ``batch.md`` (after every job), and return every job's outcome in spec order.
    A failed job does not stop the others; the error at the end names the failed ones."""
    done: dict[str, Outcome] = {}
    todo: list[Job] = []
    for job in batch.jobs:
        earlier = _finished_before(batch, job)
        if earlier is not None:
            done[job.name] = earlier
        else:
            todo.append(job)

    def ordered() -> list[Outcome]:
        return [done[job.name] for job in batch.jobs if job.name in done]

    skipped = len(done)
    where = f"the Ray cluster at {address}" if address else "a local Ray"
    if not todo:
        on_start(f"all {len(batch.jobs)} jobs finished in an earlier run; nothing to do")
    else:
        ray = start_ray(address, num_cpus)  # before anything is written: a cluster that does not answer leaves none
        (batch.output / STATE_FOLDER).mkdir(parents=True, exist_ok=True)
        note = f" ({skipped} finished in an earlier run, skipped)" if skipped else ""
        logs = batch.output / STATE_FOLDER
        on_start(f"{len(todo)} of {len(batch.jobs)} jobs to run on {where}{note}; logs in {logs}")
        total = len(todo)
        count = 0

        def finished(outcome: Outcome) -> None:
            nonlocal count
            count += 1
            done[outcome.name] = outcome
            line = f"[{count}/{total}] {outcome.status} {outcome.name} ({outcome.seconds:.0f} s)"
            if outcome.error:
                line += f": {outcome.error}"
            console.print(line)
            write_tables(batch.output, ordered())

        try:  # every job that ends, or is cut short by Ctrl-C, goes through `finished`: the table stays whole
            run_jobs(todo, batch.output, ray, resumes_from_checkpoint, finished)
        finally:
            ray.shutdown()
    outcomes = ordered()
    csv_path, md_path = write_tables(batch.output, outcomes)
    failed = [o.name for o in outcomes if o.status != "done"]
    console.print(f"table: {md_path} and {csv_path}")
    if failed:
        shown = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        raise LangfieldError(
            f"{len(failed)} of {len(outcomes)} jobs did not finish: {shown} (their logs: {batch.output / STATE_FOLDER})"
        )
    return outcomes
