"""Reliability: every bad input is one line and exit 2, nothing is overwritten without --overwrite, files are
written atomically, training survives non-finite steps, signals and SIGKILL."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
import re
import signal
import struct
import sys
import time
import typing
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from helpers import write_blender
from langfield.cli.main import main
from langfield.errors import LangfieldError

TINY = [
    "--model.resolution",
    "16",
    "--model.initial-resolution",
    "12",
    "--model.grow-at",
    "1000",
    "--model.occupancy-resolution",
    "8",
    "--batch-rays",
    "128",
    "--no-progress",
    "--eval-every",
    "0",
]
CLI_MODULES = [
    "langfield.cli.commands",
    "langfield.cli.world",
    "langfield.cli.query",
    "langfield.cli.demo",
    "langfield.cli.invert",
    "langfield.cli.edit",
    "langfield.cli.clip",
    "langfield.cli.generate",
]


def run_cli(capsys, *args) -> tuple[int, str]:
    """``langfield ARGS`` in this process: (exit code, stderr)."""
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


# --- every numeric option carries bounds ----------------------------------------------------------------------------


def _cli_roots() -> list[type]:
    from langfield.methods.registry import METHODS

    roots = [spec.config for spec in METHODS.values()]
    for name in CLI_MODULES:
        module = importlib.import_module(name)
        roots += [
            o
            for o in vars(module).values()
            if dataclasses.is_dataclass(o) and isinstance(o, type) and o.__module__ == name
        ]
    return roots


def _numeric(annotation) -> bool:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if annotation in (int, float):
        return True
    return any(_numeric(a) for a in typing.get_args(annotation) if a not in (type(None), Ellipsis))


def test_every_numeric_option_of_every_command_declares_its_bounds():
    from langfield.checks import check_of

    seen, unchecked, count = set(), [], 0
    stack = _cli_roots()
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        hints = typing.get_type_hints(cls, include_extras=True)
        for f in dataclasses.fields(cls):
            inner = hints[f.name]
            while typing.get_origin(inner) is typing.Annotated:
                inner = typing.get_args(inner)[0]
            if dataclasses.is_dataclass(inner):
                stack.append(inner)
            elif _numeric(hints[f.name]):
                count += 1
                if check_of(hints[f.name]) is None:
                    unchecked.append(f"{cls.__name__}.{f.name}")
    assert count > 200 and not unchecked, unchecked


def test_checks_name_the_flag_as_typed_and_accept_the_defaults():
    from langfield.checks import validate
    from langfield.methods.dreamfusion.config import DreamFusionConfig
    from langfield.methods.nerf.config import NerfConfig

    for root in _cli_roots():
        try:
            config = root()
        except TypeError:  # has required positionals
            continue
        validate(config)
    config = NerfConfig()
    config.trainer.batch_rays = 0
    with pytest.raises(LangfieldError, match=r"^--batch-rays must be at least 1, got 0$"):
        validate(config)
    config = DreamFusionConfig()
    config.model.sds.min_step = float("nan")
    with pytest.raises(LangfieldError, match=r"^--model\.sds\.min-step must be in \[0, 1\], got nan$"):
        validate(config)


# --- the table of bad inputs ---------------------------------------------------------------------------------------


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's calling card)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny dataset and a tiny trained run, shared by the cases."""
    root = tmp_path_factory.mktemp("bad_inputs")
    data = write_blender(root / "data", count=8, size=16)
    code = os.system(
        f"{sys.executable} -m langfield.cli.main train nerf --data {data} --output {root / 'run'} --max-steps 20 "
        + " ".join(TINY)
        + " > /dev/null"
    )
    assert code == 0
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(root / "photo.png")
    (root / "taken.mp4").write_bytes(b"the user's video")
    (root / "taken").mkdir()
    (root / "taken" / "notes.txt").write_text("the user's notes")
    return root


def _dataset_case(mutate, index: int):
    """A case that writes a mutated copy of the tiny dataset and trains on it."""

    def make(root: Path) -> list:
        folder = root / f"data_{index:02d}"
        if not folder.exists():
            write_blender(folder, count=4, size=8)
            meta = json.loads((folder / "transforms_train.json").read_text())
            mutate(folder, meta)
        return ["train", "nerf", "--data", folder, "--output", root / "never", *TINY]

    return make


def _write(folder, meta):
    (folder / "transforms_train.json").write_text(json.dumps(meta))


def _set(key, value):
    def mutate(folder, meta):
        meta[key] = value
        _write(folder, meta)

    return mutate


def _frame(key, value):
    def mutate(folder, meta):
        meta["frames"][0][key] = value
        _write(folder, meta)

    return mutate


def _raw(text: bytes):
    return lambda folder, meta: (folder / "transforms_train.json").write_bytes(text)


def _image(action):
    def mutate(folder, meta):
        action(folder / "train" / "r_0.png")

    return mutate


T = ["train", "nerf", "--data", "{data}", "--output", "{root}/never", "--no-progress"]
CASES = [
    # numeric options of training, for every method
    (T + ["--max-steps", "0"], "--max-steps must be at least 1, got 0"),
    (T + ["--max-seconds", "-1"], "--max-seconds must be positive"),
    (T + ["--max-seconds", "nan"], "--max-seconds must be positive, got nan"),
    (T + ["--batch-rays", "0"], "--batch-rays must be at least 1"),
    (T + ["--seed", "-1"], "--seed must be at least 0"),
    (T + ["--downscale", "0"], "--downscale must be at least 1"),
    (T + ["--holdout-every", "-1"], "--holdout-every must be at least 0"),
    (T + ["--num-views", "0"], "--num-views must be at least 1"),
    (T + ["--max-views", "0"], "--max-views must be at least 1"),
    (T + ["--background", "2", "0", "0"], "--background must be in [0, 1]"),
    (T + ["--scene-scale", "0"], "--scene-scale must be positive"),
    (T + ["--lr-final-ratio", "0"], "--lr-final-ratio must be positive"),
    (T + ["--checkpoint-every", "0"], "--checkpoint-every must be at least 1"),
    (T + ["--checkpoint-seconds", "inf"], "--checkpoint-seconds must be positive, got inf"),
    (T + ["--threads", "0"], "--threads must be at least 1"),
    (T + ["--eval-every", "-5"], "--eval-every must be at least 0"),
    (T + ["--max-bad-steps", "0"], "--max-bad-steps must be at least 1"),
    (T + ["--model.resolution", "1"], "--model.resolution must be at least 2"),
    (T + ["--model.resolution", "5000"], "--model.resolution 5000 (its grids) needs about"),
    (T + ["--model.grow-at", "30", "10"], "--model.grow-at must be in increasing order"),
    (T + ["--model.step-ratio", "0"], "--model.step-ratio must be positive"),
    (T + ["--model.occupancy-threshold", "1"], "--model.occupancy-threshold must be in [0, 1)"),
    (T + ["--model.occupancy-every", "0"], "--model.occupancy-every must be at least 1"),
    (T + ["--model.lr-density", "-1"], "--model.lr-density must be at least 0"),
    (T + ["--model.lr-mlp", "inf"], "--model.lr-mlp must be at least 0, got inf"),
    (T + ["--model.hidden-layers", "0"], "--model.hidden-layers must be at least 1"),
    (T + ["--model.initial-alpha", "1"], "--model.initial-alpha must be in (0, 1)"),
    (["train", "vanilla-nerf", "--model.coarse-samples", "1"], "--model.coarse-samples must be at least 2"),
    (["train", "lerf", "--model.crop-fractions", "0"], "--model.crop-fractions must be in (0, 1]"),
    (["train", "lerf", "--model.crop-fractions", "0.2", "1.5"], "--model.crop-fractions must be in (0, 1], got 1.5"),
    (["train", "lerf", "--model.crop-stride", "0"], "--model.crop-stride must be positive"),
    (["train", "lerf", "--model.query-min-opacity", "2"], "--model.query-min-opacity must be in [0, 1]"),
    (["train", "dietnerf", "--model.semantic-until", "0"], "--model.semantic-until must be in (0, 1]"),
    (
        ["train", "dietnerf", "--model.elevation-range", "10", "-10"],
        "--model.elevation-range must be in increasing order",
    ),
    (["train", "dietnerf", "--model.semantic-every", "0"], "--model.semantic-every must be at least 1"),
    # rules between options, checked where parsed too
    (["train", "dietnerf", "--model.up", "0", "0", "0"], "--model.up must be a non-zero vector"),
    (["train", "clipnerf", "--model.box", "1", "0", "0", "0", "1", "1"], "--model.box must be x0 y0 z0 x1 y1 z1"),
    (["train", "dreamfusion", "--model.radius-range", "0.5", "2"], "--model.radius-range must keep cameras outside"),
    (
        ["train", "dreamfusion", "--model.textureless-probability", "0.6", "--model.albedo-probability", "0.6"],
        "--model.textureless-probability and --model.albedo-probability must sum to at most 1",
    ),
    (
        ["train", "dreamfusion", "--model.sds.min-step", "0.9", "--model.sds.max-step", "0.5"],
        "--model.sds.min-step / --model.sds.max-step must satisfy",
    ),
    (["train", "dreamfusion", "--model.fov-range", "30", "200"], "--model.fov-range must be in (0, 180)"),
    (["train", "dreamfusion", "--model.render-resolution", "4"], "--model.render-resolution must be at least 8"),
    (["train", "dreamfusion", "--model.sds.min-step", "2"], "--model.sds.min-step must be in [0, 1]"),
    (
        ["train", "dreamfusion", "--model.textureless-probability", "1.5"],
        "--model.textureless-probability must be in [0, 1]",
    ),
    (["train", "clipnerf", "--objects", "0"], "--objects must be at least 1"),
    (["train", "clipnerf", "--model.adversarial.patch", "1"], "--model.adversarial.patch must be at least 2"),
    (["train", "clipnerf", "--model.field.resolution", "1"], "--model.field.resolution must be at least 2"),
    # numeric options of the other commands
    (["render", "{run}", "--frames", "0"], "--frames must be at least 1"),
    (["render", "{run}", "--fps", "0"], "--fps must be at least 1"),
    (["render", "{run}", "--scale", "0"], "--scale must be positive"),
    (["render", "{run}", "--elevation", "100"], "--elevation must be in [-90, 90]"),
    (["render", "{run}", "--radius", "-1"], "--radius must be positive"),
    (["render", "{run}", "--scale", "100000", "--out", "{root}/huge.mp4"], "needs about"),
    (["export", "{run}", "--resolution", "4"], "--resolution must be at least 8"),
    (["export", "{run}", "--min-opacity", "1.5"], "--min-opacity must be in [0, 1)"),
    (["export", "{run}", "--max-points", "0"], "--max-points must be at least 1"),
    (
        ["export", "{run}", "--format", "glb", "--resolution", "100000", "--out", "{root}/huge.glb"],
        "mesh lattice needs about",
    ),
    (["export", "{run}", "--format", "glb", "--out", "{root}/mesh.ply"], "must end in .glb"),
    (["world", "scene", "--out", "{root}/w", "--views", "1"], "--views must be at least 2"),
    (["world", "scene", "--out", "{root}/w", "--resolution", "4"], "--resolution must be at least 8"),
    (["world", "scene", "--out", "{root}/w", "--objects", "0"], "--objects must be at least 1"),
    (["world", "images", "--out", "{root}/w", "--count", "0"], "--count must be at least 1"),
    (["world", "category", "chair", "--out", "{root}/w", "--supersample", "0"], "--supersample must be at least 1"),
    (["query", "{run}", "x", "--frames", "0"], "--frames must be at least 1"),
    (["query", "{run}", "x", "--smoothing", "-1"], "--smoothing must be at least 0"),
    (["demo", "--seconds", "0"], "--seconds must be positive"),
    (["demo", "--downscale", "0"], "--downscale must be at least 1"),
    (["generate", "a red mug", "--frames", "-1"], "--frames must be at least 0"),
    (["generate", "a red mug", "--mesh-resolution", "2"], "--mesh-resolution must be at least 8"),
    (["edit", "chair", "a red chair", "--strength", "nan"], "--strength must be a finite number"),
    (["invert", "chair", "{root}/photo.png", "--frame-resolution", "0"], "--frame-resolution must be at least 8"),
    (["invert", "chair", "{root}/photo.png", "--fov", "180"], "--fov must be in (0, 180)"),
    (["mappers", "chair", "--steps", "0"], "--steps must be at least 1"),
    (["clip", "eval", "--objects", "0"], "--objects must be at least 1"),
    # nothing the user made is overwritten
    (["render", "{run}", "--out", "{root}/taken.mp4"], "already exists; pass --overwrite"),
    (["render", "{run}", "--out", "{root}/taken"], "folder is not empty; pass --overwrite"),
    (["export", "{run}", "--format", "ply", "--out", "{root}/taken.mp4"], "must end in .ply"),
    (["world", "scene", "--out", "{root}/taken"], "folder is not empty"),
    (["world", "images", "--out", "{root}/taken", "--count", "2"], "folder is not empty"),
    (["demo", "--out", "{root}/taken"], "folder is not empty"),
    (["train", "nerf", "--data", "{data}", "--output", "{root}/taken"], "folder is not empty"),
    (["train", "nerf", "--data", "{data}", "--output", "{run}"], "already holds a run; pass --resume"),
    (
        ["train", "nerf", "--data", "{data}", "--output", "{run}", "--resume", "--overwrite"],
        "--resume or --overwrite, not both",
    ),
    (["query", "{run}", "x", "--out", "{root}/taken"], "queries need a 'lerf' run"),
    (["edit", "chair", "a red chair", "--out", "{root}/taken"], "folder is not empty"),
    (["invert", "chair", "{root}/photo.png", "--out", "{root}/taken"], "folder is not empty"),
    # runs and images that are not what they claim
    (["eval", "{root}/taken"], "not a langfield run"),
    (["render", "{root}/nothing"], "not a langfield run"),
    (["invert", "chair", "{root}/taken.mp4", "--out", "{root}/inv"], "not a readable image"),
    (
        ["clip", "classify", "{root}/photo.png", "--labels", "a;b", "--encoder", "nobody/no-such-clip"],
        "--allow-download",
    ),
    (
        ["clip", "classify", "{root}/photo.png", "--encoder", "efficientnet-lite9"],
        "unknown backbone 'efficientnet-lite9'",
    ),
    (
        ["clip", "classify", "{root}/photo.png", "--encoder", "efficientnet-lite0", "--labels", "a;b"],
        "has no text tower",
    ),
    (["clip", "classify", "{root}/photo.png"], "--labels is empty or missing"),
    (["clip", "eval", "--encoder", "efficientnet-lite0", "--objects", "2", "--crops", "0"], "has no text tower"),
]
DATASET_CASES = [
    (_raw(b"\xff\xfe{not utf-8"), "not UTF-8"),
    (_raw(b"{"), "malformed JSON"),
    (_raw(b"[" * 100_000 + b"]" * 100_000), "nested too deeply"),
    (_raw(b"[1, 2]"), "expected a JSON object"),
    (_set("frames", {"a": 1}), "field 'frames' has the wrong type"),
    (_set("camera_angle_x", "wide"), "field 'camera_angle_x' must be a number"),
    (_set("camera_angle_x", 10), "camera_angle_x must be in (0, pi)"),
    (_set("camera_angle_x", 10**400), "'camera_angle_x' is too large"),
    (_frame("file_path", 7), "field 'file_path' has the wrong type"),
    (_frame("file_path", "../../etc/passwd"), "points outside the dataset folder"),
    (_frame("file_path", "/etc/passwd"), "pass --allow-outside to read it"),
    (_frame("file_path", "a\x00b"), "contains a NUL byte"),
    (_frame("file_path", "x" * 5000), "'file_path' is too long"),
    (_frame("file_path", "./train/missing"), "image not found"),
    (_frame("transform_matrix", [[1, 0, 0], [0, 1]]), "rows of different lengths"),
    (_frame("transform_matrix", [["a", 0, 0, 0]] * 4), "numbers only"),
    (_frame("transform_matrix", [[10**400, 0, 0, 0]] * 4), "number too large"),
    (_frame("transform_matrix", "eye"), "list of rows of numbers"),
    (_frame("transform_matrix", [[1, 0, 0, 0]] * 4), "not a rigid transform"),
    (_frame("object_index", -3), "'object_index' must be a non-negative integer"),
    (_image(lambda p: p.write_bytes(b"not a png")), "cannot read image"),
    (_image(lambda p: _png_header_only(p, 100_000, 100_000)), "decompression bomb"),
    (_image(lambda p: Image.new("RGB", (9, 9)).save(p)), "differs from"),
]


def _fill(args: list, world: Path) -> list[str]:
    return [str(a).format(root=world, run=world / "run", data=world / "data") for a in args]


@pytest.mark.parametrize("args, message", CASES, ids=[f"{i:02d}-{' '.join(c[0][:3])}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_line_and_exit_2(world, capsys, args, message):
    code, err = run_cli(capsys, *_fill(args, world))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert (world / "taken.mp4").read_bytes() == b"the user's video" and (world / "taken" / "notes.txt").is_file()


@pytest.mark.parametrize(
    "index", range(len(DATASET_CASES)), ids=[f"dataset-{i:02d}" for i in range(len(DATASET_CASES))]
)
def test_bad_dataset_is_one_line_and_exit_2(world, capsys, index):
    mutate, message = DATASET_CASES[index]
    code, err = run_cli(capsys, *_dataset_case(mutate, index)(world))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err


def test_the_table_holds_at_least_60_cases():
    assert len(CASES) + len(DATASET_CASES) >= 60


def test_allow_outside_reads_a_frame_outside_the_folder(tmp_path):
    from langfield.data import DataConfig, load_dataset

    folder = write_blender(tmp_path / "d", count=4, size=8)
    (tmp_path / "shared").mkdir()
    os.replace(folder / "train" / "r_0.png", tmp_path / "shared" / "r_0.png")
    meta = json.loads((folder / "transforms_train.json").read_text())
    meta["frames"][0]["file_path"] = "../shared/r_0.png"
    (folder / "transforms_train.json").write_text(json.dumps(meta))
    with pytest.raises(LangfieldError, match="outside the dataset folder"):
        load_dataset(DataConfig(data=folder))
    dataset = load_dataset(DataConfig(data=folder, allow_outside=True))
    assert len(dataset) == 4 and dataset.images.dtype == torch.float16


# --- generated malformed transforms.json ----------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=12,
)
KEYS = ["frames", "camera_angle_x", "fl_x", "fl_y", "cx", "cy", "w", "h", "train_filenames", "test_filenames"]
FRAME_KEYS = ["file_path", "transform_matrix", "fl_x", "w", "h", "object_index"]


@st.composite
def malformed(draw):
    """A valid transforms file with 1-3 random corruptions: a key removed, a value replaced by arbitrary JSON, a
    frame replaced, a matrix made ragged, or the text cut short."""
    meta = draw(st.sampled_from(["blender", "nerfstudio"]))
    focal = 20.0
    frames = [{"file_path": f"images/f{i}.png", "transform_matrix": np.eye(4).tolist()} for i in range(3)]
    for f in frames:
        f["transform_matrix"][2][3] = 3.0
    doc = (
        {"frames": frames, "camera_angle_x": 0.6}
        if meta == "blender"
        else {"frames": frames, "fl_x": focal, "w": 8, "h": 8}
    )
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["drop", "replace", "frame", "frame_key", "ragged", "truncate"]))
        if action == "drop" and doc:
            doc.pop(draw(st.sampled_from(sorted(doc))))
        elif action == "replace":
            doc[draw(st.sampled_from(KEYS))] = draw(JSON)
        elif action == "frame" and isinstance(doc.get("frames"), list) and doc["frames"]:
            doc["frames"][draw(st.integers(0, len(doc["frames"]) - 1))] = draw(JSON)
        elif (
            action == "frame_key"
            and isinstance(doc.get("frames"), list)
            and doc["frames"]
            and isinstance(doc["frames"][0], dict)
        ):
            doc["frames"][0][draw(st.sampled_from(FRAME_KEYS))] = draw(JSON)
        elif (
            action == "ragged"
            and isinstance(doc.get("frames"), list)
            and doc["frames"]
            and isinstance(doc["frames"][-1], dict)
        ):
            doc["frames"][-1]["transform_matrix"] = [[1.0, 0.0], [0.0]]
        elif action == "truncate":
            return meta, json.dumps(doc)[: draw(st.integers(0, 40))].encode()
    return meta, json.dumps(doc).encode()


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generated")
    (folder / "images").mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 60 * i, np.uint8)).save(folder / "images" / f"f{i}.png")
    return folder


GENERATED = {"count": 0, "errors": 0}


@settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(malformed())
def test_generated_malformed_transforms_give_a_clean_error(image_folder, case):
    from langfield.data import DataConfig, load_dataset

    kind, text = case
    for stale in ("transforms.json", "transforms_train.json"):
        (image_folder / stale).unlink(missing_ok=True)
    (image_folder / ("transforms_train.json" if kind == "blender" else "transforms.json")).write_bytes(text)
    GENERATED["count"] += 1
    try:
        load_dataset(DataConfig(data=image_folder, holdout_every=0))
    except LangfieldError as exc:
        GENERATED["errors"] += 1
        assert "\n" not in str(exc) and str(exc)


def test_the_generated_files_were_mostly_refused():
    # runs after the property test in file order: at least 500 files, nearly all malformed enough to be refused
    if GENERATED["count"] == 0:
        pytest.skip("run with the property test")
    print(f"generated transforms files: {GENERATED['count']}, refused with one line: {GENERATED['errors']}")
    assert GENERATED["count"] >= 500 and GENERATED["errors"] >= 0.8 * GENERATED["count"], GENERATED


# --- atomic files ----------------------------------------------------------------------------------------------------


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    from langfield.atomic import atomic_write, write_json

    target = tmp_path / "metrics.json"
    write_json(target, {"psnr": 30})
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as handle:
            handle.write('{"psnr": ')
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"psnr": 30} and os.listdir(tmp_path) == ["metrics.json"]


def test_png_of_an_8_bit_grid_keeps_its_pixels(tmp_path):
    # the demo's query grid is 8-bit already: it must not be scaled a second time (it came out pure white)
    from langfield.export.images import save_png

    grid = np.zeros((4, 4, 3), np.uint8)
    grid[:2] = 200
    save_png(tmp_path / "g.png", grid)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "g.png")), grid)


def test_cache_writers_use_unique_temporaries(tmp_path, monkeypatch):
    import tempfile

    from langfield.tensorfile import load_cache, save_cache

    names = []
    original = tempfile.mkstemp
    monkeypatch.setattr(
        tempfile,
        "mkstemp",
        lambda **kw: names.append(original(**kw)[1]) or (os.open(names[-1], os.O_WRONLY), names[-1]),
    )
    save_cache(tmp_path / "c.pt", {"x": torch.ones(2)})
    save_cache(tmp_path / "c.pt", {"x": torch.zeros(2)})
    assert len(set(names)) == 2 and all(Path(n).parent == tmp_path and not Path(n).exists() for n in names)
    assert torch.equal(load_cache(tmp_path / "c.pt")["x"], torch.zeros(2))
    (tmp_path / "c.pt").write_bytes(b"torn")
    assert load_cache(tmp_path / "c.pt") is None and not (tmp_path / "c.pt").exists()  # rebuilt, never trusted


def test_every_torch_load_is_weights_only():
    source = Path(__file__).parents[1] / "src" / "langfield"
    calls = [(p, line) for p in source.rglob("*.py") for line in p.read_text().splitlines() if "torch.load(" in line]
    assert calls and all("weights_only=True" in line for _, line in calls), calls
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert re.search(r'"torch>=2\.(6|[7-9]|\d\d)', pyproject)


def test_hub_ids_are_local_only_without_allow_download(monkeypatch):
    from langfield import hub

    monkeypatch.setenv(hub.ENV, "0")
    assert hub.offline() == {"local_files_only": True}
    monkeypatch.setenv(hub.ENV, "1")
    assert hub.offline() == {"local_files_only": False}


def test_user_text_is_printed_as_it_is(capsys):
    from langfield.ui import console

    console.print("a [/bold] chair [red]")  # rich markup would raise on the stray closing tag
    assert "a [/bold] chair [red]" in capsys.readouterr().out


def test_the_error_line_is_one_write(monkeypatch):
    # ranks of one torchrun share a stderr; print's two writes (the text, then the newline) let another rank's error
    # line in between, and test_distributed's two error lines once came out run together
    from langfield.cli.main import run_guarded

    class Recorder:
        def __init__(self):
            self.writes: list[str] = []

        def write(self, text: str) -> int:
            self.writes.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    recorder = Recorder()
    monkeypatch.setattr(sys, "stderr", recorder)

    def job():
        raise LangfieldError("rank 1: /data/nope: no such dataset folder")

    with pytest.raises(SystemExit) as exit_info:
        run_guarded(job)
    assert exit_info.value.code == 2
    assert recorder.writes == ["error: rank 1: /data/nope: no such dataset folder\n"]


# --- training faults -------------------------------------------------------------------------------------------------


def _tiny_config(data: Path, output: Path, steps: int):
    from langfield.cli.parsing import parse
    from langfield.methods.nerf.config import NerfConfig

    return parse(
        NerfConfig,
        ["--data", str(data), "--output", str(output), "--max-steps", str(steps), *TINY, "--checkpoint-every", "5"],
    )


def test_non_finite_steps_are_skipped_and_repeated_ones_stop_training(sphere_scene, tmp_path, monkeypatch):
    from langfield.methods.nerf.model import NerfModel
    from langfield.methods.registry import get_method
    from langfield.train.checkpoint import load_checkpoint
    from langfield.train.trainer import Trainer

    original, calls = NerfModel.loss, {"n": 0}
    bad = {"transient": {7, 8}, "gradient": {12}, "persistent": set(range(20, 100))}

    def loss(self, outputs, batch):
        calls["n"] += 1
        losses = original(self, outputs, batch)
        if calls["n"] in bad["transient"] | bad["persistent"]:
            losses["total"] = losses["total"] * float("nan")
        if calls["n"] in bad["gradient"]:  # a finite loss whose gradient is not: d sqrt(x)/dx at 0
            zero = sum(p.sum() for p in self.parameters()) * 0
            losses["total"] = losses["total"] + torch.sqrt(zero)
        return losses

    monkeypatch.setattr(NerfModel, "loss", loss)
    bad["persistent"] = set()
    Trainer(get_method("nerf"), _tiny_config(sphere_scene, tmp_path / "a", 15)).train()
    summary = json.loads((tmp_path / "a" / "train_summary.json").read_text())
    assert summary["steps"] == 15 and summary["skipped_steps"] == 3
    state = load_checkpoint(tmp_path / "a" / "checkpoint.pt")["model"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    skipped = [
        json.loads(line) for line in (tmp_path / "a" / "train_log.jsonl").read_text().splitlines() if "skipped" in line
    ]
    assert [e["step"] for e in skipped] == [6, 7, 11]

    calls["n"], bad["persistent"] = 0, set(range(13, 100))
    with pytest.raises(LangfieldError, match="10 steps in a row had a non-finite loss or gradient"):
        Trainer(get_method("nerf"), _tiny_config(sphere_scene, tmp_path / "b", 60)).train()
    kept = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    # steps 12-21 were skipped; the checkpoints of steps 15 and 20 hold the weights of step 12, the last good one
    assert kept["step"] == 20 and all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())


def test_resume_with_a_damaged_or_mismatched_checkpoint_is_one_line(sphere_scene, tmp_path, capsys):
    from langfield.train.checkpoint import load_checkpoint, save_checkpoint

    run = tmp_path / "r"
    args = ["train", "nerf", "--data", sphere_scene, "--output", run, "--max-steps", "6", *TINY]
    assert run_cli(capsys, *args)[0] == 0
    payload = load_checkpoint(run / "checkpoint.pt")
    del payload["optimizer"]
    save_checkpoint(run / "checkpoint.pt", payload)
    code, err = run_cli(capsys, *args[: -len(TINY)], "--max-steps", "8", "--resume", *TINY)
    assert code == 2 and "damaged checkpoint (no 'optimizer')" in err and len(err.strip().splitlines()) == 1
    payload = load_checkpoint(tmp_path / "r" / "checkpoint.pt")
    assert run_cli(capsys, *args, "--overwrite")[0] == 0
    payload = load_checkpoint(run / "checkpoint.pt")
    del payload["model"][next(iter(payload["model"]))]
    save_checkpoint(run / "checkpoint.pt", payload)
    code, err = run_cli(
        capsys, "train", "nerf", "--data", sphere_scene, "--output", run, "--max-steps", "8", "--resume", *TINY
    )
    assert code == 2 and "does not match this version of 'nerf'" in err and len(err.strip().splitlines()) == 1
    (run / "config.json").write_bytes(b"\xff\xfe")
    code, err = run_cli(capsys, "train", "nerf", "--data", sphere_scene, "--output", run, "--resume", *TINY)
    assert code == 2 and "config.json" in err and len(err.strip().splitlines()) == 1


def _train_child(data: str, output: str, resume: bool) -> None:
    """Body of a forked training process (the test's imports are shared, so a start costs no interpreter)."""
    torch.set_num_threads(1)
    argv = [
        "train",
        "nerf",
        "--data",
        data,
        "--output",
        output,
        "--max-steps",
        "100000",
        *TINY,
        "--checkpoint-every",
        "3",
        "--checkpoint-seconds",
        "0.2",
        "--threads",
        "1",
    ]
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        main(argv + (["--resume"] if resume else []))
    finally:
        os._exit(0)


def _assert_run_intact(run: Path) -> int:
    """Every file of the run folder reads back whole; returns the checkpoint's step (0 before the first one)."""
    from langfield.train.checkpoint import load_checkpoint

    names = {p.name for p in run.iterdir()}
    if "config.json" in names:
        json.loads((run / "config.json").read_text())
    for line in (run / "train_log.jsonl").read_text().splitlines() if "train_log.jsonl" in names else []:
        json.loads(line)
    return int(load_checkpoint(run / "checkpoint.pt")["step"]) if "checkpoint.pt" in names else 0


@pytest.mark.slow
def test_sigkill_at_20_random_moments_then_resume(sphere_scene, tmp_path):
    import multiprocessing as mp
    import random

    context = mp.get_context("fork")
    run = tmp_path / "killed"
    rng = random.Random(0)
    steps, trials = [], 20
    for trial in range(trials):
        resume = (run / "checkpoint.pt").exists()
        child = context.Process(target=_train_child, args=(str(sphere_scene), str(run), resume))
        child.start()
        time.sleep(rng.uniform(0.3, 1.6))
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        assert child.exitcode == -signal.SIGKILL, f"trial {trial}: the child ended by itself ({child.exitcode})"
        steps.append(_assert_run_intact(run))
    print(f"checkpoint step after each of the {trials} kills: {steps}")
    assert steps == sorted(steps) and steps[-1] > 0, steps  # every resume went on from the last checkpoint
    from langfield.methods.registry import get_method
    from langfield.train.trainer import Trainer

    config = _tiny_config(sphere_scene, run, steps[-1] + 5)
    config.trainer.resume = True
    Trainer(get_method("nerf"), config).train()
    assert _assert_run_intact(run) == steps[-1] + 5
    assert not [p for p in run.iterdir() if ".tmp" in p.name]
    logged = [json.loads(line)["step"] for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert logged == sorted(logged), "the log holds each step once, in order"


@pytest.mark.slow
def test_sigterm_saves_like_ctrl_c_and_resumes(sphere_scene, tmp_path):
    import subprocess

    run = tmp_path / "term"
    cmd = [
        sys.executable,
        "-m",
        "langfield.cli.main",
        "train",
        "nerf",
        "--data",
        str(sphere_scene),
        "--output",
        str(run),
        "--max-steps",
        "100000",
        *TINY,
    ]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (run / "config.json").exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    assert "checkpoint saved" in out
    step = _assert_run_intact(run)
    assert step > 0
    result = subprocess.run(
        cmd[: -len(TINY) - 2] + ["--max-steps", str(step + 3), "--resume", *TINY], capture_output=True, text=True
    )
    assert result.returncode == 0 and f"resuming {run} from step {step}" in result.stdout, result.stderr
    assert math.isfinite(json.loads((run / "train_summary.json").read_text())["train_psnr"])


def test_a_second_ctrl_c_stops_at_once_and_saves_nothing(sphere_scene, tmp_path, monkeypatch):
    from langfield.methods.nerf.model import NerfModel
    from langfield.methods.registry import get_method
    from langfield.train.checkpoint import load_checkpoint
    from langfield.train.interrupt import Aborted
    from langfield.train.trainer import Trainer

    original, calls = NerfModel.loss, {"n": 0}

    def loss(self, outputs, batch):
        calls["n"] += 1
        if calls["n"] == 8:  # during step 8: Ctrl-C, then Ctrl-C again before the step ends
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        return original(self, outputs, batch)

    monkeypatch.setattr(NerfModel, "loss", loss)
    with pytest.raises(Aborted):
        Trainer(get_method("nerf"), _tiny_config(sphere_scene, tmp_path / "r", 50)).train()
    assert load_checkpoint(tmp_path / "r" / "checkpoint.pt")["step"] == 5  # the periodic one; step 8 was half done
    calls["n"] = -100  # one Ctrl-C: the step ends, then it is saved
    monkeypatch.setattr(
        NerfModel,
        "loss",
        lambda self, o, b: (
            calls.__setitem__("n", calls["n"] + 1),
            calls["n"] == -97 and signal.raise_signal(signal.SIGINT),
            original(self, o, b),
        )[-1],
    )
    config = _tiny_config(sphere_scene, tmp_path / "r", 50)
    config.trainer.resume = True
    with pytest.raises(KeyboardInterrupt) as caught:
        Trainer(get_method("nerf"), config).train()
    assert not isinstance(caught.value, Aborted) and load_checkpoint(tmp_path / "r" / "checkpoint.pt")["step"] == 8


def test_output_folders_and_files_langfield_may_reuse(tmp_path):
    from langfield.atomic import fresh_file, fresh_folder, write_text

    assert fresh_folder(tmp_path / "new", overwrite=False).is_dir()  # made when missing
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / ".langfield-demo").touch()
    (tmp_path / "demo" / "orbit.mp4").write_bytes(b"an earlier demo's")
    fresh_folder(tmp_path / "demo", overwrite=False, owned_marker=".langfield-demo")  # its own folder: reused
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "photo.jpg").write_bytes(b"x")
    with pytest.raises(LangfieldError, match="not empty"):
        fresh_folder(tmp_path / "mine", overwrite=False, owned_marker=".langfield-demo")
    assert fresh_folder(tmp_path / "mine", overwrite=True) == tmp_path / "mine"
    with pytest.raises(LangfieldError, match="pass --overwrite"):
        fresh_file(tmp_path / "mine" / "photo.jpg", overwrite=False)
    with pytest.raises(LangfieldError, match="is a folder"):
        fresh_file(tmp_path / "mine", overwrite=True)
    write_text(tmp_path / "mode.txt", "x")  # written like any file: readable by others (not mkstemp's 0600)
    assert (tmp_path / "mode.txt").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
