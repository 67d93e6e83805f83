import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import write_blender, write_llff, write_nerfstudio
from langfield.data import DataConfig, load_dataset
from langfield.errors import LangfieldError


def test_blender_holdout_split_and_background(sphere_scene):
    ds = load_dataset(DataConfig(data=sphere_scene))
    assert ds.format == "blender" and len(ds) == 24
    assert ds.test_indices == [0, 8, 16]
    assert set(ds.train_indices) == set(range(24)) - {0, 8, 16}
    assert ds.has_alpha
    # a corner pixel is background: white by default, black when asked
    assert torch.allclose(ds.rgb(0)[0, 0], torch.ones(3), atol=1e-3)
    black = load_dataset(DataConfig(data=sphere_scene, background=(0.0, 0.0, 0.0)))
    assert torch.allclose(black.rgb(0)[0, 0], torch.zeros(3), atol=1e-3)
    # focal from camera_angle_x = 0.6 at 32 px
    assert abs(float(ds.cameras.fx[0]) - 16 / np.tan(0.3)) < 1e-3


def test_blender_split_files_and_overrides(tmp_path):
    folder = write_blender(tmp_path / "s", count=6, size=16, test_count=2)
    ds = load_dataset(DataConfig(data=folder))
    assert ds.train_indices == list(range(6)) and ds.test_indices == [6, 7]
    forced = load_dataset(DataConfig(data=folder, split="holdout", holdout_every=4))
    assert forced.test_indices == [0, 4]


def test_downscale_is_area_filtering(tmp_path):
    folder = write_blender(tmp_path / "s", count=2, size=16)
    full = load_dataset(DataConfig(data=folder))
    half = load_dataset(DataConfig(data=folder, downscale=2))
    assert half.width == 8 and half.height == 8
    expected = full.images.float().reshape(2, 8, 2, 8, 2, 4).mean(dim=(2, 4))
    assert torch.allclose(half.images.float(), expected, atol=2e-3)
    assert torch.allclose(half.cameras.fx, full.cameras.fx / 2)


def test_nerfstudio_global_and_per_frame(tmp_path):
    a = load_dataset(DataConfig(data=write_nerfstudio(tmp_path / "a")))
    b = load_dataset(DataConfig(data=write_nerfstudio(tmp_path / "b", per_frame=True)))
    assert a.format == b.format == "nerfstudio"
    assert torch.allclose(a.cameras.fx, b.cameras.fx) and torch.allclose(a.cameras.cy, b.cameras.cy)
    assert a.cameras.origins.abs().max() <= 1.0 + 1e-5  # poses normalised into the unit cube
    c = load_dataset(DataConfig(data=write_nerfstudio(tmp_path / "c", with_splits=True)))
    assert c.test_indices == [0] and c.train_indices == list(range(1, 8))


def test_llff(tmp_path):
    ds = load_dataset(DataConfig(data=write_llff(tmp_path / "l")))
    assert ds.format == "llff" and len(ds) == 6 and not ds.has_alpha
    assert ds.test_indices == [0]
    assert abs(ds.near - 0.9 / 0.75) < 1e-4  # nearest bound normalised to 1/0.75
    forward = -ds.cameras.c2w[:, :, 2]
    assert (forward[:, 2] < -0.99).all()  # still looking down -z after re-centring


def _frames(folder):
    path = folder / "transforms_train.json"
    return path, json.loads(path.read_text())


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda p, m: p.write_text("{ not json"), "malformed JSON"),
        (lambda p, m: p.write_text(json.dumps({"frames": m["frames"]})), "camera_angle_x"),
        (lambda p, m: p.write_text(json.dumps({**m, "frames": []})), "no frames"),
        (
            lambda p, m: (m["frames"][1].update(file_path="./train/missing"), p.write_text(json.dumps(m))),
            "image not found",
        ),
        (
            lambda p, m: (
                m["frames"][0]["transform_matrix"][0].__setitem__(3, float("nan")),
                p.write_text(json.dumps(m)),
            ),
            "non-finite",
        ),
        (
            lambda p, m: (m["frames"][0]["transform_matrix"][0].__setitem__(0, 3.0), p.write_text(json.dumps(m))),
            "not a rigid",
        ),
        (lambda p, m: (m["frames"][0].pop("transform_matrix"), p.write_text(json.dumps(m))), "transform_matrix"),
    ],
)
def test_bad_blender_input_names_the_problem(tmp_path, corrupt, message):
    folder = write_blender(tmp_path / "s", count=3, size=8)
    path, meta = _frames(folder)
    corrupt(path, meta)
    with pytest.raises(LangfieldError, match=message) as info:
        load_dataset(DataConfig(data=folder))
    assert "\n" not in str(info.value)
    assert "transforms_train.json" in str(info.value) or "missing" in str(info.value)


def test_images_of_different_sizes(tmp_path):
    folder = write_blender(tmp_path / "s", count=3, size=8)
    Image.new("RGBA", (9, 8)).save(folder / "train" / "r_2.png")
    with pytest.raises(LangfieldError, match="r_2.png: image size 9x8 differs"):
        load_dataset(DataConfig(data=folder))


def test_missing_or_unknown_folder(tmp_path):
    with pytest.raises(LangfieldError, match="no such dataset folder"):
        load_dataset(DataConfig(data=tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(LangfieldError, match="no dataset found"):
        load_dataset(DataConfig(data=tmp_path / "empty"))


def test_nerfstudio_frames_may_name_their_object(tmp_path):
    folder = write_nerfstudio(tmp_path / "ns", count=6)
    meta = json.loads((folder / "transforms.json").read_text())
    for i, frame in enumerate(meta["frames"]):
        frame["object_index"] = i // 3
    (folder / "transforms.json").write_text(json.dumps(meta))
    assert load_dataset(DataConfig(data=folder)).objects.tolist() == [0, 0, 0, 1, 1, 1]
    meta["frames"][4]["object_index"] = -1
    (folder / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(
        LangfieldError, match=r"transforms.json frame 4: 'object_index' must be a non-negative integer, got -1"
    ):
        load_dataset(DataConfig(data=folder))
    assert load_dataset(DataConfig(data=write_nerfstudio(tmp_path / "plain", count=4))).objects is None
