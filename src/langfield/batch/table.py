"""The batch's table of every job: its status, time and run metrics, as CSV and Markdown."""

from __future__ import annotations

import csv
import io
import math
import shlex
from pathlib import Path
from typing import Any, Sequence

from langfield.atomic import write_text
from langfield.batch.runner import Outcome

TABLE_CSV = "batch.csv"
TABLE_MD = "batch.md"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
    return str(value)


def columns(outcomes: Sequence[Outcome]) -> list[str]:
    """The metric names of all jobs, in the order they first appear."""
    names: list[str] = []
    for outcome in outcomes:
        names += [k for k in outcome.metrics if k not in names]
    return names


def write_tables(folder: Path, outcomes: Sequence[Outcome]) -> tuple[Path, Path]:
    """``FOLDER/batch.csv`` (everything, the command line too) and ``FOLDER/batch.md``; both written atomically."""
    metrics = columns(outcomes)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["job", "status", "job_seconds", *metrics, "error", "command"])
    for o in outcomes:
        row = [o.name, o.status, f"{o.seconds:.1f}", *(o.metrics.get(k, "") for k in metrics), o.error]
        writer.writerow([*row, "langfield " + shlex.join(o.argv)])
    csv_path, md_path = Path(folder) / TABLE_CSV, Path(folder) / TABLE_MD
    write_text(csv_path, buffer.getvalue())
    head = ["job", "status", "job_seconds", *metrics, "error"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for o in outcomes:
        cells = [o.name, o.status, f"{o.seconds:.1f}", *(_cell(o.metrics.get(k, "")) for k in metrics), o.error]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    write_text(md_path, "\n".join(lines) + "\n")
    return csv_path, md_path
