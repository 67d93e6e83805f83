"""The benchmark scripts' runs as one `langfield batch` (jobs that finished before are skipped; how many run at
once is the local Ray's CPUs over each job's `cpus`)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def write_spec(path: Path, table_folder: Path, cpus: float, jobs: list[dict]) -> Path:
    """A spec with one [[job]] per dict: ``command``, ``name``, ``options`` (a dict), optional ``args`` (tokens
    after the command, e.g. a run folder)."""
    lines = ["[batch]", f"output = {toml_value(table_folder)}", f"cpus = {cpus}", ""]
    for job in jobs:
        options = ", ".join(f"{toml_value(k)} = {toml_value(v)}" for k, v in job.get("options", {}).items())
        lines += ["[[job]]", f"command = {toml_value(job['command'])}", f"name = {toml_value(job['name'])}"]
        if job.get("args"):
            lines.append(f"args = {toml_value(job['args'])}")
        lines += [f"options = {{ {options} }}", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def run_batch(spec: Path, num_cpus: int | None = None) -> float:
    """``langfield batch SPEC``; its wall-clock seconds. A failed job stops the benchmark (after the others ran)."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "langfield", "batch", str(spec)]
    subprocess.run([*command, *(["--num-cpus", str(num_cpus)] if num_cpus else [])], check=True)
    return time.perf_counter() - start


def job_seconds(table_folder: Path, name: str) -> float:
    """The wall clock of a batch job's command (from its status file)."""
    return float(json.loads((table_folder / "_batch" / f"{name}.json").read_text())["seconds"])
