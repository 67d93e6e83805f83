"""The command line: user errors are one line on stderr, a non-zero exit, and no traceback."""

import numpy as np
import pytest

from helpers import assert_clean_error, langfield, tiny_nerf_options, write_blender

TINY = tiny_nerf_options()


def test_help_lists_commands():
    result = langfield("--help")
    assert result.returncode == 0 and "train" in result.stdout and "export" in result.stdout


def test_unknown_method_and_command(tmp_path):
    assert_clean_error(langfield("train", "nerv", "--data", tmp_path), "unknown method 'nerv'", "nerf")
    assert_clean_error(langfield("trian"), "unknown command 'trian'")


def test_train_on_missing_or_bad_data(tmp_path):
    assert_clean_error(langfield("train", "nerf", "--data", tmp_path / "nope", "--output", tmp_path / "run"), "nope")
    folder = write_blender(tmp_path / "bad", count=2, size=8)
    (folder / "transforms_train.json").write_text("{")
    assert_clean_error(
        langfield("train", "nerf", "--data", folder, "--output", tmp_path / "run2"),
        "transforms_train.json",
        "malformed JSON",
    )


def test_eval_render_export_on_a_folder_that_is_not_a_run(tmp_path):
    for command in ("eval", "render", "export"):
        assert_clean_error(langfield(command, tmp_path), "not a langfield run")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = write_blender(root / "data", count=8, size=24)
    result = langfield("train", "nerf", "--data", data, "--output", root / "run", "--max-steps", "250", *TINY)
    assert result.returncode == 0, result.stderr
    return root


def test_resume_from_corrupt_or_foreign_checkpoint(tiny_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run / "run", run)
    checkpoint = run / "checkpoint.pt"
    data = tiny_run / "data"
    # truncated file
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    assert_clean_error(
        langfield("train", "nerf", "--data", data, "--output", run, "--resume", *TINY), "checkpoint.pt", "corrupt"
    )
    # something that is not a langfield checkpoint
    import torch

    torch.save({"weights": torch.zeros(3)}, checkpoint)
    assert_clean_error(
        langfield("train", "nerf", "--data", data, "--output", run, "--resume", *TINY), "not a langfield checkpoint"
    )
    # a run of another method
    assert_clean_error(
        langfield("train", "vanilla-nerf", "--data", data, "--output", run, "--resume"), "holds a 'nerf' run"
    )
    # and an existing run is not overwritten silently
    assert_clean_error(
        langfield("train", "nerf", "--data", data, "--output", tiny_run / "run", *TINY), "already holds a run"
    )


def test_eval_render_export_commands(tiny_run):
    run = tiny_run / "run"
    result = langfield("eval", run, "--save-images")
    assert result.returncode == 0, result.stderr
    import json

    metrics = json.loads((run / "metrics.json").read_text())
    assert {"psnr", "ssim", "num_views", "seconds_per_view"} <= set(metrics)
    assert metrics["num_views"] == 1 and isinstance(metrics["psnr"], float)
    assert list((run / "eval").glob("*_pair.png"))

    video = tiny_run / "orbit.mp4"
    result = langfield("render", run, "--path", "orbit", "--frames", "6", "--out", video)
    assert result.returncode == 0, result.stderr
    assert video.stat().st_size > 1000
    frames = tiny_run / "frames"
    result = langfield("render", run, "--frames", "3", "--out", f"{frames}/", "--output", "depth")
    assert result.returncode == 0, result.stderr
    assert len(list(frames.glob("frame_*.png"))) == 3

    result = langfield("export", run, "--format", "ply", "--out", tiny_run / "points.ply", "--max-points", "500")
    assert result.returncode == 0, result.stderr
    from langfield.export.ply import read_point_cloud

    points = read_point_cloud(tiny_run / "points.ply")
    assert 0 < len(points) <= 500
    assert np.isfinite(np.stack([points["x"], points["y"], points["z"]])).all()
    assert_clean_error(
        langfield("export", run, "--format", "glb", "--threshold", "1e9"), "no surface at density threshold"
    )


def test_a_checkpoint_from_another_version_of_the_method_is_a_one_line_error(tiny_run, tmp_path):
    import shutil

    import torch

    run = tmp_path / "run"
    shutil.copytree(tiny_run / "run", run)
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    payload["model"].pop(next(iter(payload["model"])))
    torch.save(payload, run / "checkpoint.pt")
    assert_clean_error(langfield("eval", run), "checkpoint.pt: does not match this version of 'nerf'", "Missing key")
