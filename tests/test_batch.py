"""``langfield batch``: a TOML grid of commands expanded into jobs, run as Ray tasks with one table of outcomes,
finished jobs skipped on the next run, one line for every kind of bad input."""

import csv
import json
import sys
from pathlib import Path

import pytest

from helpers import assert_clean_error, langfield, signal_state, tiny_nerf_options, write_blender
from langfield.batch import load_batch, resumes_from_checkpoint
from langfield.cli.batch import output_option
from langfield.errors import LangfieldError

#: a tiny nerf, as the dotted keys of one TOML inline table (which must stay on one line)
TINY_MODEL = (
    "model.resolution = 16, model.initial-resolution = 12, model.grow-at = [[20, 40]], model.occupancy-resolution = 16"
)


def spec(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_lists_expand_into_the_product_and_placeholders_fill_in(tmp_path):
    path = spec(
        tmp_path,
        """
[batch]
output = "sweep"
cpus = 2

[[job]]
command = "train nerf"
grid = { scene = ["a", "b"] }
options = { data = "scenes/{scene}", seed = [0, 1], progress = false, model.grow-at = [[10, 20]] }
then = ["eval {output}"]

[[job]]
command = "generate"
name = "prompt-{n}"
grid = { n = [1] }
args = ["a red mug"]
gpus = 1
""",
    )
    batch = load_batch(path, output_option)
    names = [job.name for job in batch.jobs]
    assert names == [
        "train-nerf-scenea-seed0",
        "train-nerf-scenea-seed1",
        "train-nerf-sceneb-seed0",
        "train-nerf-sceneb-seed1",
        "prompt-1",
    ]
    first = batch.jobs[0]
    assert first.argv == [
        "train",
        "nerf",
        "--data",
        "scenes/a",
        "--seed",
        "0",
        "--no-progress",
        "--model.grow-at",
        "10",
        "20",
        "--output",
        "sweep/train-nerf-scenea-seed0",
    ]
    assert first.then == [["eval", "sweep/train-nerf-scenea-seed0"]] and first.cpus == 2 and first.gpus == 0
    assert batch.jobs[-1].argv == ["generate", "a red mug", "--output", "sweep/prompt-1"]
    assert batch.jobs[-1].gpus == 1


def test_the_folder_a_job_writes_is_the_one_its_options_name(tmp_path):
    path = spec(
        tmp_path,
        """
[[job]]
command = "world scene"
name = "scene{seed}"
options = { out = "scenes/s{seed}", seed = [1, 2] }

[[job]]
command = "eval runs/a"
name = "eval-a"
""",
    )
    scene, _, evaluation = load_batch(path, output_option).jobs
    assert scene.argv == ["world", "scene", "--out", "scenes/s1", "--seed", "1"]
    assert str(scene.output) == "scenes/s1" and scene.writes  # its folder gone: the job runs again
    assert evaluation.argv == ["eval", "runs/a"] and not evaluation.writes


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[[job]\n", "not valid TOML"),
        ("[batch]\n", "no jobs"),
        ('[[job]]\ncommand = "eval x"\noptons = {}\n', "unknown key 'optons'"),
        ('[[job]]\nname = "x"\n', "needs command"),
        ('[[job]]\ncommand = "train nerf"\nname = "r{seed}"\n', "unknown placeholder {seed}"),
        ('[[job]]\ncommand = "train nerf"\nname = "same"\noptions = { seed = [1, 2] }\n', "2 jobs are named 'same'"),
        ('[[job]]\ncommand = "train nerf"\noptions = { seed = [] }\n', "empty list"),
        ('[[job]]\ncommand = "train nerf"\ncpus = -1\n', "cpus = -1"),
        ('[batch]\nworkers = 2\n[[job]]\ncommand = "eval x"\n', "unknown key 'workers'"),
    ],
)
def test_a_bad_spec_is_one_error_naming_the_file_and_the_job(tmp_path, text, fragment):
    with pytest.raises(LangfieldError) as caught:
        load_batch(spec(tmp_path, text), output_option)
    assert fragment in str(caught.value) and "spec.toml" in str(caught.value)


def test_bad_jobs_and_addresses_on_the_command_line_are_one_line(tmp_path):
    cases = [
        ('[[job]]\ncommand = "trian nerf"\n', ["job 'trian-nerf'", "unknown command 'trian'"]),
        (
            '[[job]]\ncommand = "train nerf"\noptions = { data = "d", bogus = 1 }\n',
            ["job 'train-nerf'", "Unrecognized options: --bogus"],
        ),
        (
            '[[job]]\ncommand = "train nerf"\noptions = { data = "d", max-steps = 0 }\n',
            ["--max-steps must be at least 1"],
        ),
        ('[[job]]\ncommand = "eval r"\nthen = ["render r --frames x"]\n', ["(then: render)", "--frames"]),
        ('[[job]]\ncommand = "batch x.toml"\n', ["cannot be another batch"]),
    ]
    for number, (text, fragments) in enumerate(cases):
        path = spec(tmp_path, text, f"bad{number}.toml")
        assert_clean_error(langfield("batch", path), f"bad{number}.toml", *fragments)
    good = spec(tmp_path, '[[job]]\ncommand = "eval r"\n', "good.toml")
    assert_clean_error(langfield("batch", good, "--address", "127.0.0.1:1"), "no Ray cluster answers there")
    assert not (tmp_path / "good").exists()  # nothing was written for a batch that could not start
    assert_clean_error(langfield("batch", tmp_path / "none.toml"), "no such batch spec")


def test_a_batch_on_local_ray_tables_every_job_and_skips_finished_ones(tmp_path):
    data = write_blender(tmp_path / "data", count=8, size=24)
    tiny = (
        "max-steps = 60, batch-rays = 256, eval-every = 0, progress = false, model.resolution = 16, "
        "model.initial-resolution = 12, model.grow-at = [[20, 40]], model.occupancy-resolution = 16"
    )
    path = spec(
        tmp_path,
        f"""
[batch]
output = "{tmp_path / "out"}"

[[job]]
command = "train nerf"
name = "seed{{seed}}"
options = {{ data = "{data}", seed = [0, 1, 2], {tiny} }}
then = ["eval {{output}}"]

[[job]]
command = "train nerf"
name = "broken"
options = {{ data = "{tmp_path / "missing"}", {tiny} }}
""",
    )
    out = tmp_path / "out"
    # one job stopped half-way in an earlier attempt: the batch resumes it rather than starting over
    partial = ["train", "nerf", "--data", data, "--output", out / "seed2", "--seed", "2", "--max-steps", "30"]
    result = langfield(*partial, *tiny_nerf_options(16, (20, 40), 256, "--eval-every", "0"))
    assert result.returncode == 0, result.stderr

    result = langfield("batch", path, "--num-cpus", "2", timeout=600)
    assert result.returncode == 2  # a job failed: the batch says so, the others ran to the end
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: 1 of 4 jobs did not finish: broken")
    assert "failed broken" in result.stdout and "no such dataset folder" in result.stdout

    rows = {row["job"]: row for row in csv.DictReader((out / "batch.csv").open())}
    assert list(rows) == ["seed0", "seed1", "seed2", "broken"]  # spec order, whatever order they ended in
    for name in ("seed0", "seed1", "seed2"):
        assert rows[name]["status"] == "done" and rows[name]["error"] == ""
        assert int(rows[name]["train_steps"]) == 60 and float(rows[name]["psnr"]) > 5  # train, then eval
        assert (out / name / "metrics.json").is_file()  # each job is an ordinary run folder
    assert rows["broken"]["status"] == "failed" and "no such dataset folder" in rows["broken"]["error"]
    assert "--resume" in (out / "_batch" / "seed2.log").read_text()
    assert "resuming" in (out / "_batch" / "seed2.log").read_text()
    markdown = (out / "batch.md").read_text().splitlines()
    assert markdown[0].startswith("| job | status | job_seconds |") and len(markdown) == 2 + 4

    logs = {name: (out / "_batch" / f"{name}.log").stat().st_size for name in rows}
    status = json.loads((out / "_batch" / "seed0.json").read_text())
    result = langfield("batch", path, "--num-cpus", "2", timeout=600)
    assert result.returncode == 2
    assert "1 of 4 jobs to run" in result.stdout and "3 finished in an earlier run, skipped" in result.stdout
    for name in ("seed0", "seed1", "seed2"):  # not run again
        assert (out / "_batch" / f"{name}.log").stat().st_size == logs[name]
    assert (out / "_batch" / "broken.log").stat().st_size > logs["broken"]
    again = {row["job"]: row for row in csv.DictReader((out / "batch.csv").open())}
    assert again["seed0"]["psnr"] == rows["seed0"]["psnr"]
    assert float(again["seed0"]["job_seconds"]) == pytest.approx(status["seconds"], abs=0.1)


def long_training_spec(tmp_path, out):
    """A batch of one job, "long": a tiny nerf with a step limit no test waits for (it is stopped)."""
    data = write_blender(tmp_path / "data", count=8, size=24)
    return spec(
        tmp_path,
        f"""
[batch]
output = "{out}"

[[job]]
command = "train nerf"
name = "long"
options = {{ data = "{data}", max-steps = 100000, batch-rays = 256, eval-every = 0, progress = false, {TINY_MODEL} }}
""",
    )


def test_ctrl_c_stops_the_batch_keeps_the_checkpoint_and_the_next_run_resumes(tmp_path, request):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    path = long_training_spec(tmp_path, out)
    driver = subprocess.Popen(
        [sys.executable, "-m", "langfield", "batch", str(path), "--num-cpus", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    request.addfinalizer(lambda: kill_leftovers(tmp_path))  # a failure must not leave anything running
    log = out / "_batch" / "long.log"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "blender dataset" not in (log.read_text() if log.is_file() else ""):
        time.sleep(0.5)
    time.sleep(3)  # some steps
    state = signal_state(driver.pid)  # the message says whether SIGINT could reach the driver
    driver.send_signal(signal.SIGINT)
    try:
        stdout, stderr = driver.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the batch did not stop on SIGINT; its signals before it: {state}") from None
    assert driver.returncode == 130, stderr
    assert "Traceback" not in stdout + stderr
    status = json.loads((out / "_batch" / "long.json").read_text())
    assert status["status"] == "interrupted"
    assert "checkpoint saved" in log.read_text()  # the training stopped at a step boundary and saved
    step = load_checkpoint_step(out / "long" / "checkpoint.pt")
    assert step > 0
    rows = list(csv.DictReader((out / "batch.csv").open()))
    assert [(r["job"], r["status"]) for r in rows] == [("long", "interrupted")]
    # the next run of the batch continues the training from that checkpoint
    (job,) = load_batch(path, output_option).jobs
    assert resumes_from_checkpoint(job)


def load_checkpoint_step(path):
    from langfield.train.checkpoint import load_checkpoint

    return int(load_checkpoint(path, method="nerf")["step"])


def test_a_repeated_cancel_does_not_cut_short_the_commands_save():
    import _thread
    import subprocess
    import sys
    import threading

    from langfield.batch.runner import stop_command

    # a command that takes 1.5 s to "save" after the first SIGINT and counts the SIGINTs it gets
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time\n"
            "got = []\n"
            "signal.signal(signal.SIGINT, lambda *a: got.append(1))\n"
            "print('ready', flush=True)\n"
            "while not got: time.sleep(0.05)\n"
            "time.sleep(1.5)\n"
            "print(len(got), flush=True)\n"
            "sys.exit(130)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    timer = threading.Timer(0.5, _thread.interrupt_main)  # what Ray's cancel does, a second time, during the wait
    timer.start()
    stop_command(child, grace=20)
    timer.join()
    assert child.returncode == 130  # it finished its save: not killed
    assert child.stdout.read().strip() == "1"  # and it was asked once (a second SIGINT means "stop at once")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_job_whose_worker_dies_saves_and_stops_instead_of_running_on(tmp_path, request):
    import signal
    import subprocess
    import time

    out = tmp_path / "out"
    path = long_training_spec(tmp_path, out)
    log = tmp_path / "long.log"
    worker = subprocess.Popen(  # stands for a Ray worker running the job's task
        [
            sys.executable,
            "-c",
            "from langfield.batch import load_batch\n"
            "from langfield.batch.runner import execute\n"
            "from langfield.cli.batch import output_option\n"
            f"(job,) = load_batch({str(path)!r}, output_option).jobs\n"
            f"execute(job, {str(tmp_path)!r}, {str(log)!r}, False)\n",
        ]
    )
    request.addfinalizer(lambda: kill_leftovers(tmp_path))  # a failure must not leave anything running
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "blender dataset" not in (log.read_text() if log.is_file() else ""):
        time.sleep(0.5)
    time.sleep(2)  # some steps
    worker.send_signal(signal.SIGKILL)  # no chance to forward anything
    worker.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "checkpoint saved" not in log.read_text():
        time.sleep(0.5)
    assert "checkpoint saved" in log.read_text()
    assert load_checkpoint_step(out / "long" / "checkpoint.pt") > 0
    time.sleep(1)
    assert not kill_leftovers(out)  # the training did not outlive its worker


def kill_leftovers(folder: Path) -> list[int]:
    """Kill the processes whose command line names ``folder`` (Linux); the ids of those that were running."""
    import os
    import signal

    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        if str(folder) in _cmdline(proc) and int(proc.name) != os.getpid():
            found.append(int(proc.name))
            try:
                os.kill(int(proc.name), signal.SIGKILL)
            except OSError:
                pass
    return found


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
