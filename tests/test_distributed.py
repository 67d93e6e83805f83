"""Data-parallel training of one run with torchrun (gloo on CPU): the same result as one process with the same
rays per step, parameters identical on every rank, resuming on another number of ranks, and one line per rank
for bad input."""

import json
import os
import subprocess
import sys

import pytest
import torch

from helpers import langfield, tiny_nerf_options
from langfield.train.checkpoint import load_checkpoint
from langfield.train.distributed import state_digest

TINY = tiny_nerf_options(24, (100, 200), 512, "--eval-every", "0")


def torchrun(ranks, *args, timeout=300):
    """``torchrun --standalone --nproc-per-node RANKS -m langfield ARGS`` (a free port, so tests may run at once)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)]
    # faulthandler: a rank that dies of a signal prints every thread's Python stack into the failure's message
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    return subprocess.run(
        [*command, "-m", "langfield", *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
    )


def held_out_psnr(run) -> float:
    result = langfield("eval", run)
    assert result.returncode == 0, result.stderr
    return json.loads((run / "metrics.json").read_text())["psnr"]


def test_two_ranks_train_like_one_process_and_stay_identical(sphere_scene, tmp_path):
    alone, pair = tmp_path / "alone", tmp_path / "pair"
    result = langfield("train", "nerf", "--data", sphere_scene, "--output", alone, "--max-steps", "300", *TINY)
    assert result.returncode == 0, result.stderr
    result = torchrun(2, "train", "nerf", "--data", sphere_scene, "--output", pair, "--max-steps", "300", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 ranks" in result.stdout and result.stdout.count("trained nerf") == 1  # rank 0 speaks for both

    summary = json.loads((pair / "train_summary.json").read_text())
    assert summary["ranks"] == 2 and summary["steps"] == 300
    # every rank's parameters and buffers (occupancy grid included) bit for bit, and those rank 0 saved
    saved = load_checkpoint(pair / "checkpoint.pt", method="nerf")["model"]
    assert summary["rank_digests"] == [state_digest(saved)] * 2
    # each rank drew half of the 512 rays: the log of the pair shows the per-step samples of one rank's share
    psnr_alone, psnr_pair = held_out_psnr(alone), held_out_psnr(pair)
    assert psnr_alone > 20
    assert abs(psnr_pair - psnr_alone) <= 0.3, (psnr_alone, psnr_pair)
    # only rank 0 wrote: one log line per logged step
    steps = [json.loads(line)["step"] for line in (pair / "train_log.jsonl").read_text().splitlines()]
    assert len(steps) == len(set(steps))


def test_a_run_resumes_on_another_number_of_ranks(sphere_scene, tmp_path):
    run = tmp_path / "run"
    result = torchrun(2, "train", "nerf", "--data", sphere_scene, "--output", run, "--max-steps", "150", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    before = load_checkpoint(run / "checkpoint.pt", method="nerf")
    assert before["step"] == 150
    # one process takes over the run of two
    result = langfield(
        "train", "nerf", "--data", sphere_scene, "--output", run, "--max-steps", "300", "--resume", *TINY
    )
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stdout
    after = load_checkpoint(run / "checkpoint.pt", method="nerf")
    assert after["step"] == 300
    assert not torch.equal(before["model"]["field.color_mlp.0.weight"], after["model"]["field.color_mlp.0.weight"])
    assert held_out_psnr(run) > 20
    # and two take over from one
    result = torchrun(
        2, "train", "nerf", "--data", sphere_scene, "--output", run, "--max-steps", "350", "--resume", *TINY
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["steps"] == 350 and len(set(summary["rank_digests"])) == 1


def test_bad_input_on_every_rank_is_one_line_naming_the_rank(tmp_path):
    result = torchrun(2, "train", "nerf", "--data", tmp_path / "nope", "--output", tmp_path / "run", *TINY)
    assert result.returncode != 0
    errors = sorted(line for line in result.stderr.splitlines() if line.startswith("error:"))
    assert errors == [f"error: rank {r}: {tmp_path / 'nope'}: no such dataset folder" for r in (0, 1)]
    assert "[rank0]: Traceback" not in result.stderr and "[rank1]: Traceback" not in result.stderr


@pytest.mark.parametrize("rays", ["1"])
def test_fewer_rays_than_ranks_is_refused(sphere_scene, tmp_path, rays):
    args = ["train", "nerf", "--data", sphere_scene, "--output", tmp_path / "run", "--max-steps", "5", *TINY]
    result = torchrun(2, *args, "--batch-rays", rays)
    assert result.returncode != 0
    assert "fewer than the 2 ranks" in result.stderr


def _rank_process(marker: str, rank: int) -> int | None:
    """The pid of the training process of ``rank`` whose command line contains ``marker``."""
    from pathlib import Path

    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in command and "torch.distributed.run" not in command and f"RANK={rank}".encode() in environ:
            return int(proc.name)
    return None


def test_a_rank_that_dies_stops_the_other_with_one_line(sphere_scene, tmp_path):
    import signal
    import time

    run = tmp_path / "dying"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m"]
    args = ["langfield", "train", "nerf", "--data", str(sphere_scene), "--output", str(run), "--max-steps", "100000"]
    launcher = subprocess.Popen(
        [*command, *args, *TINY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ
    )
    log = run / "train_log.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (log.is_file() and log.read_text().count("\n") >= 2):
        time.sleep(0.3)
    pid = _rank_process(str(run), 1)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    _, stderr = launcher.communicate(timeout=120)
    assert launcher.returncode != 0
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: rank 0: lost contact with the other ranks"), stderr[-2000:]
    assert "another rank stopped" in errors[0] and "[rank0]: Traceback" not in stderr


def test_a_time_budget_stops_every_rank_after_the_same_step(sphere_scene, tmp_path):
    run = tmp_path / "timed"
    args = ["train", "nerf", "--data", sphere_scene, "--output", run, "--max-steps", "100000", "--max-seconds", "6"]
    result = torchrun(2, *args, *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / "train_summary.json").read_text())
    # one clock for both ranks (the learning-rate schedule follows it too): same last step, same parameters
    assert 10 < summary["steps"] < 100000 and len(set(summary["rank_digests"])) == 1
    assert load_checkpoint(run / "checkpoint.pt", method="nerf")["step"] == summary["steps"]


def test_row_sparse_gradients_are_reduced_and_stay_sparse():
    import socket

    import torch.distributed as dist

    from langfield.train.distributed import ProcessGroup

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        grid = torch.nn.Parameter(torch.zeros(10, 3))
        dense = torch.nn.Parameter(torch.zeros(4))
        rows = torch.tensor([[2, 7]])
        grid.grad = torch.sparse_coo_tensor(
            rows, torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 6.0]]), (10, 3), check_invariants=True
        )
        dense.grad = torch.ones(4)
        agreed = ProcessGroup(0, 1, 0, torch.device("cpu")).reduce_gradients([grid, dense], 0.5, True, False)
        assert agreed.finite and agreed.any_gradient
        assert grid.grad.is_sparse and grid.grad.coalesce().indices()[0].tolist() == [2, 7]
        assert torch.equal(grid.grad.to_dense()[7], torch.tensor([2.0, 0.0, 3.0]))
        assert not dense.grad.is_sparse and torch.equal(dense.grad, torch.full((4,), 0.5))
    finally:
        dist.destroy_process_group()


def test_a_rank_leaves_without_finalisation_with_its_output_flushed():
    """``leave``: a process that was a rank exits with its status and its buffered output, skipping Python's
    finalisation (atexit handlers, C++ static destructors) where gloo's leftover thread could abort it; any other
    process exits normally."""
    script = (
        "import atexit, sys\n"
        "from langfield.cli.main import leave\n"
        "import langfield.train.distributed as d\n"
        "atexit.register(lambda: print('finalised'))\n"
        "d._joined = sys.argv[1] == 'rank'\n"
        "sys.stdout.write('trained, no newline yet')\n"
        "leave(3)\n"
    )
    rank = subprocess.run([sys.executable, "-c", script, "rank"], capture_output=True, text=True)
    assert (rank.returncode, rank.stdout) == (3, "trained, no newline yet")
    alone = subprocess.run([sys.executable, "-c", script, "alone"], capture_output=True, text=True)
    assert (alone.returncode, alone.stdout) == (3, "trained, no newline yetfinalised\n")
