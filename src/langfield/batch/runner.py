"""Running a batch's jobs as Ray tasks: a local Ray started in this process, or an existing cluster.

Each job is a ``langfield`` command run as a child process of a Ray worker, its output in
``BATCH/_batch/NAME.log``; its status (done / failed / interrupted, seconds, the one-line error, the metrics of its
run folder) is written to ``BATCH/_batch/NAME.json`` as soon as it ends, so nothing finished is lost when the batch
is stopped, and a job that finished with the same command line is skipped the next time. A ``train`` job that
stopped half-way resumes from its checkpoint. Every node must see the same files (the working folder, the data, the
batch folder) and have langfield installed in the same Python.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from langfield.atomic import write_json
from langfield.batch.spec import STATE_FOLDER, Job
from langfield.core.runfiles import METRICS_FILE, SUMMARY_FILE
from langfield.errors import LangfieldError, one_line

#: the files of a run folder whose numbers go into the batch table, and the prefix of their names there
METRIC_FILES = {SUMMARY_FILE: "train_", METRICS_FILE: ""}
#: a job cancelled by Ctrl-C gets this long to save its state (a training finishes its step and checkpoints)
GRACE_SECONDS = 60.0


@dataclass
class Outcome:
    """How one job ended."""

    name: str
    status: str
    """done (now or in an earlier run of the batch), failed or interrupted."""
    seconds: float = 0.0
    error: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)

    def record(self) -> dict:
        return {
            "name": self.name,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "error": self.error,
            "metrics": self.metrics,
            "argv": self.argv,
        }


def state_path(batch_output: Path, name: str, suffix: str) -> Path:
    return Path(batch_output) / STATE_FOLDER / f"{name}{suffix}"


def read_metrics(folder: Path) -> dict[str, Any]:
    """The scalar numbers (and short strings) of a run folder's summary and metrics files."""
    found: dict[str, Any] = {}
    for name, prefix in METRIC_FILES.items():
        path = Path(folder) / name
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(values, dict):
            for key, value in values.items():
                if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                    continue
                if isinstance(value, str) and len(value) > 40:
                    continue
                found[key if key.startswith(prefix) else prefix + key] = value
    return found


def _error_line(log: Path, code: int) -> str:
    """The command's own error line (``error: ...``) from its log, or its last line, or how it died."""
    try:
        lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        lines = []
    lines = [line for line in lines if line]
    errors = [line for line in lines if line.startswith("error:")]
    if errors:
        return errors[-1].removeprefix("error:").strip()[:300]
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    tail = lines[-1][:300] if lines else ""
    return f"exit code {code}" + (f": {tail}" if tail else "")


def _parent_death_signal() -> Callable[[], Any] | None:
    """Linux's ``prctl(PR_SET_PDEATHSIG, SIGTERM)``, looked up before the fork (the child must not load libraries);
    None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1: PR_SET_PDEATHSIG


def _child_setup(parent: int, on_parent_death: Callable[[], Any] | None) -> Callable[[], None]:
    """What the job's process does before it starts. An ignored SIGINT stays ignored across exec, so it is reset to
    the default (a signal Ray's workers block is unblocked by the command itself, ``cli.main``). And the command gets
    SIGTERM (it saves at a step boundary and stops) when its worker dies — a worker killed by ``ray.shutdown`` or by
    a lost cancel must not leave a training running on its own."""

    def setup() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if on_parent_death is not None:
            on_parent_death()
            if os.getppid() != parent:  # the worker died before the request: nobody would stop this command
                os._exit(143)

    return setup


def stop_command(child: subprocess.Popen, grace: float = GRACE_SECONDS) -> None:
    """Ask ``child`` to stop at its next step boundary (SIGINT, once: a second one means "stop at once, nothing
    saved"); kill it if it has not ended after ``grace`` seconds. A repeated cancel does not cut the wait short."""
    child.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace
    while True:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
            return
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            return
        except KeyboardInterrupt:  # Ray delivered the cancel again: keep waiting for the save
            continue


def execute(job: Job, cwd: str, log: str, resume: bool) -> dict:
    """Run ``job``'s commands one after the other (what a Ray task does); the record of its outcome. A cancel
    (KeyboardInterrupt in the task) sends the running command SIGINT, so a training saves its checkpoint."""
    start = time.perf_counter()
    log_path = Path(log)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    threads = str(max(1, int(job.cpus)))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = threads  # torch's threads: the job's CPUs, not the node's
    env.pop("WORLD_SIZE", None)  # a job is one process (torchrun inside a job is the user's to ask for)
    status, error = "done", ""
    setup = _child_setup(os.getpid(), _parent_death_signal())
    with log_path.open("a", encoding="utf-8") as out:
        for number, argv in enumerate(job.commands):
            if number == 0 and resume:
                argv = [*argv, "--resume"]
            out.write(f"$ langfield {' '.join(argv)}\n")
            out.flush()
            child = subprocess.Popen(
                [sys.executable, "-m", "langfield", *argv],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=setup,
            )
            try:
                while child.poll() is None:  # not wait(): Ray's cancel interrupts Python code, not a blocked wait
                    time.sleep(0.2)
                code = child.returncode
            except KeyboardInterrupt:  # ray.cancel: let the command stop at a step boundary and save
                stop_command(child)
                status, error = "interrupted", "stopped by Ctrl-C; run the batch again to continue"
                break
            if code != 0:
                out.flush()
                status = "interrupted" if code in (130, 143) else "failed"
                error = _error_line(log_path, code)
                if number > 0:
                    error = f"{argv[0]}: {error}"
                break
    seconds = time.perf_counter() - start
    return Outcome(job.name, status, seconds, error, read_metrics(job.output), job.argv).record()


def _check_address(address: str) -> None:
    """An address of the form host:port must answer before Ray is asked (whose own wait is long and noisy)."""
    if address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise LangfieldError(f"--address {address}: expected HOST:PORT (the cluster's GCS, e.g. 10.0.0.5:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except OSError as exc:
        raise LangfieldError(f"--address {address}: no Ray cluster answers there ({one_line(exc, 80)})") from None


def start_ray(address: str | None, num_cpus: int | None) -> Any:
    """Connect to the cluster at ``address`` or start a local Ray in this process (``num_cpus``: its CPUs,
    default all of the machine's)."""
    import logging
    import warnings

    try:
        import ray
    except ImportError:
        raise LangfieldError("langfield batch needs Ray: pip install 'langfield[cluster]' (or 'ray>=2.9')") from None
    if address:
        _check_address(address)
    logging.getLogger("ray").setLevel(logging.ERROR)
    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.ERROR,
        "configure_logging": True,
    }
    if address:
        options["address"] = address
    else:
        options["num_cpus"] = num_cpus or os.cpu_count() or 1
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ray.init(**options)
    except Exception as exc:  # ray raises ConnectionError, RuntimeError, ValueError... with long texts
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise LangfieldError(f"could not start {where} ({one_line(exc, 120)})") from None
    return ray


def run_jobs(
    jobs: list[Job],
    batch_output: Path,
    ray: Any,
    resume: Callable[[Job], bool],
    finished: Callable[[Outcome], None],
) -> list[Outcome]:
    """Run ``jobs`` on Ray (at most what the cluster's CPUs and GPUs allow at once); ``finished`` is called, in
    the driver, as each one ends (its status file is written first). Ctrl-C cancels the rest and waits for the
    running ones to save (those that do not end in time are recorded as interrupted); then it goes on as
    KeyboardInterrupt."""
    task = ray.remote(execute)
    cwd = os.getcwd()
    pending: dict[Any, Job] = {}
    for job in jobs:
        ref = task.options(num_cpus=job.cpus, num_gpus=job.gpus, max_retries=0, name=f"langfield:{job.name}").remote(
            job, cwd, str(state_path(batch_output, job.name, ".log")), resume(job)
        )
        pending[ref] = job
    outcomes: list[Outcome] = []

    def record(job: Job, outcome: Outcome) -> None:
        write_json(state_path(batch_output, job.name, ".json"), outcome.record())
        outcomes.append(outcome)
        finished(outcome)

    def collect(ref: Any) -> None:
        job = pending.pop(ref)
        try:
            outcome = Outcome(**ray.get(ref))
        except Exception as exc:  # the task itself failed (worker died, cancelled before it started)
            cancelled = type(exc).__name__ in ("TaskCancelledError", "RayTaskError") and "ancel" in str(exc)
            status = "interrupted" if cancelled else "failed"
            outcome = Outcome(job.name, status, 0.0, one_line(exc, 200), read_metrics(job.output), job.argv)
        record(job, outcome)

    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                collect(ref)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref)  # a running job gets KeyboardInterrupt: its command saves and stops
        deadline = time.monotonic() + GRACE_SECONDS + 10
        while pending and time.monotonic() < deadline:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=max(0.1, deadline - time.monotonic()))
            for ref in ready:
                collect(ref)
        for job in list(pending.values()):
            record(job, Outcome(job.name, "interrupted", 0.0, "stopped by Ctrl-C", {}, job.argv))
        raise
    return outcomes
