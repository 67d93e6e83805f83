"""The procedural world: exact geometry, determinism, masks, captions and labelled images."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from langfield.data import DataConfig, load_dataset
from langfield.errors import LangfieldError
from langfield.world import KINDS, primitives, random_scene
from langfield.world.dataset import render_views, write_scene_dataset
from langfield.world.images import crop_images, object_images, write_images
from langfield.world.vocabulary import (
    COLORS,
    COMPOSITE_KINDS,
    EVAL_TEMPLATES,
    MATERIALS,
    PRIMITIVE_KINDS,
    TRAIN_TEMPLATES,
    Attributes,
    captions,
)


def ray(origin, direction):
    return torch.tensor([origin], dtype=torch.float32), torch.tensor([direction], dtype=torch.float32)


@pytest.mark.parametrize(
    "name, dims, origin, direction, t, normal",
    [
        ("sphere", (0.5, 0, 0), (0, 0, -3), (0, 0, 1), 2.5, (0, 0, -1)),
        ("box", (0.5, 0.2, 0.3), (2, 0, 0), (-1, 0, 0), 1.5, (1, 0, 0)),
        ("cylinder", (0.3, 0.5, 0), (0, 2, 0), (0, -1, 0), 1.7, (0, 1, 0)),
        ("cylinder", (0.3, 0.5, 0), (0.1, 0, 3), (0, 0, -1), 2.5, (0, 0, 1)),  # top cap
        ("cone", (0.4, 0.5, 0), (0, 0, 3), (0, 0, -1), 2.5, None),  # the apex
        ("cone", (0.4, 0.5, 0), (0.1, 0, -3), (0, 0, 1), 2.5, (0, 0, -1)),  # base cap
        ("torus", (0.5, 0.1, 0), (-3, 0, 0), (1, 0, 0), 2.4, (-1, 0, 0)),
    ],
)
def test_primitive_intersections(name, dims, origin, direction, t, normal):
    o, d = ray(origin, direction)
    hit, n = primitives.INTERSECT[name](o, d, torch.tensor([dims], dtype=torch.float32))
    assert abs(float(hit[0]) - t) < 1e-3
    if normal is not None:
        assert torch.allclose(n[0], torch.tensor(normal, dtype=torch.float32), atol=1e-3)


def test_primitives_miss():
    o, d = ray((0, 0, -3), (0, 1, 0))
    for name, dims in [
        ("sphere", (0.5, 0, 0)),
        ("box", (0.5, 0.5, 0.5)),
        ("cylinder", (0.5, 0.5, 0)),
        ("cone", (0.5, 0.5, 0)),
        ("torus", (0.5, 0.1, 0)),
    ]:
        hit, _ = primitives.INTERSECT[name](o, d, torch.tensor([dims], dtype=torch.float32))
        assert math.isinf(float(hit[0])), name


def test_vocabulary_is_big_enough_and_wordings_are_split():
    assert len(KINDS) >= 8 and len(COLORS) >= 10 and len(MATERIALS) >= 2
    assert set(PRIMITIVE_KINDS) | set(COMPOSITE_KINDS) == set(KINDS) and len(COMPOSITE_KINDS) >= 2
    assert {"sphere", "cube", "cylinder", "cone", "torus", "capsule"} <= set(PRIMITIVE_KINDS)
    assert not set(TRAIN_TEMPLATES) & set(EVAL_TEMPLATES)
    for table in (KINDS, MATERIALS):
        for train, evaluation in table.values():
            assert not set(train) & set(evaluation)
    for _, train, evaluation in COLORS.values():
        assert not set(train) & set(evaluation)
    attributes = Attributes("cube", "red", "glossy", "small")
    train, evaluation = captions(attributes, "train"), captions(attributes, "eval")
    assert "a red cube" in train and not set(train) & set(evaluation)
    assert any("crimson" in c and "block" in c for c in evaluation)
    assert all("crimson" not in c for c in train)


def test_scene_layout_is_seeded_and_non_overlapping():
    a, b, c = random_scene(1, 6), random_scene(1, 6), random_scene(2, 6)
    assert [o.position for o in a.objects] == [o.position for o in b.objects]
    assert [o.position for o in a.objects] != [o.position for o in c.objects]
    from langfield.world.objects import footprint

    for i, p in enumerate(a.objects):
        for q in a.objects[i + 1 :]:  # footprints (circles on the table) never overlap
            reach = footprint(p.parts) * p.scale + footprint(q.parts) * q.scale
            assert math.dist(p.position, q.position) > reach, (p, q)
    with pytest.raises(LangfieldError, match="cannot place 60 objects"):
        random_scene(0, 60)
    with pytest.raises(LangfieldError, match="at least 1"):
        random_scene(0, 0)


@pytest.fixture(scope="module")
def scene_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("world") / "scene"
    write_scene_dataset(out, seed=3, objects=5, views=16, resolution=48)
    return out


def test_scene_dataset_is_deterministic_and_loads_as_blender(scene_dataset, tmp_path):
    again = tmp_path / "again"
    write_scene_dataset(again, seed=3, objects=5, views=16, resolution=48)
    files = sorted(p.relative_to(scene_dataset) for p in scene_dataset.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for name in files:
        assert (scene_dataset / name).read_bytes() == (again / name).read_bytes(), name
    other = tmp_path / "other"
    write_scene_dataset(other, seed=4, objects=5, views=16, resolution=48)
    assert (other / "objects.json").read_text() != (scene_dataset / "objects.json").read_text()

    ds = load_dataset(DataConfig(data=scene_dataset))
    assert ds.format == "blender" and ds.has_alpha and ds.width == 48
    assert len(ds.train_indices) == 14 and len(ds.test_indices) == 2


def test_objects_json_and_visibility(scene_dataset):
    description = json.loads((scene_dataset / "objects.json").read_text())
    assert len(description["objects"]) == 5
    frames = json.loads((scene_dataset / "transforms_train.json").read_text())["frames"]
    from PIL import Image

    seen = set()
    for frame in frames:
        seen |= set(np.unique(np.asarray(Image.open(scene_dataset / frame["mask_path"]))).tolist())
    for obj in description["objects"]:
        assert obj["id"] in seen  # every object is visible in a training view
        assert obj["training_views_visible"] >= 1
        assert obj["captions"]["train"] and obj["captions"]["eval"]
        lo, hi = np.array(obj["bbox"])
        assert (hi > lo).all()


def test_masks_agree_with_depth_and_boxes():
    scene = random_scene(5, 4)
    from langfield.world.cameras import hemisphere_poses, pinhole

    cameras = pinhole(hemisphere_poses(3, 3.6, np.random.default_rng(0)), 64)
    for i, view in enumerate(render_views(scene, cameras)):
        hit = torch.isfinite(view["depth"])
        assert torch.equal(hit, view["ids"] > 0)
        assert torch.equal(hit, view["alpha"] > 0)
        origins, directions = cameras.image_rays(i)
        points = (origins + directions * view["depth"].reshape(-1, 1))[view["ids"].reshape(-1) > 0]
        ids = view["ids"].reshape(-1)[view["ids"].reshape(-1) > 0]
        for obj in scene.objects:
            inside = points[ids == obj.id]
            if len(inside):
                lo, hi = torch.tensor(obj.bbox())
                assert (
                    (inside >= lo - 1e-3) & (inside <= hi + 1e-3)
                ).all()  # each pixel's 3D point lies in its object's box


def test_object_images_are_labelled_and_deterministic():
    first = list(object_images(7, 20, 32, kinds=["sphere"], colors=["red", "blue"]))
    again = list(object_images(7, 20, 32, kinds=["sphere"], colors=["red", "blue"], batch=6))
    assert [i.attributes for i in first] == [i.attributes for i in again]
    assert all(torch.equal(a.image, b.image) for a, b in zip(first, again))
    for item in first:
        centre = item.image[12:20, 12:20].reshape(-1, 3).mean(0)
        if item.attributes.color == "red":
            assert centre[0] > centre[2] + 0.1
        else:
            assert centre[2] > centre[0] + 0.1


def test_crops_are_labelled_with_a_scene_object(tmp_path):
    items = list(crop_images(0, 4, 32))
    for item in items:
        assert item.attributes in item.scene_objects
        assert item.image.shape == (32, 32, 3)
    write_images(tmp_path / "crops", 0, 3, 32, kind="crop")
    lines = [json.loads(line) for line in (tmp_path / "crops" / "labels.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and all((tmp_path / "crops" / entry["file"]).is_file() for entry in lines)
    assert {"attributes", "captions", "eval_captions", "scene_objects"} <= set(lines[0])


@pytest.mark.parametrize(
    "args, message",
    [
        (["scene", "--objects", "0"], "--objects must be at least 1"),
        (["scene", "--objects", "60"], "cannot place 60 objects"),
        (["scene", "--resolution", "0"], "--resolution must be at least 8"),
        (["images", "--colors", "mauve"], "unknown colour 'mauve'"),
        (["images", "--kinds", "cub"], "unknown kind 'cub'"),
        (["images", "--count", "0"], "--count must be at least 1"),
        (["category", "chair", "--views", "1"], "--views must be at least 2"),
        (["category", "chair", "--objects", "0"], "--objects must be at least 1"),
    ],
)
def test_world_cli_errors(tmp_path, args, message):
    result = subprocess.run(
        [sys.executable, "-m", "langfield.cli.main", "world", args[0], "--out", str(tmp_path / "o"), *args[1:]],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_category_objects_have_their_own_proportions_and_colour():
    from langfield.world.category import CATEGORIES, CategoryObject, object_cameras, render_object

    cameras = object_cameras(4, 32, np.random.default_rng(0))
    chair = CATEGORIES["chair"]
    low = {k: lo for k, (lo, hi) in chair.parameters.items()}
    tall = {**low, "back_height": chair.parameters["back_height"][1], "seat_height": chair.parameters["seat_height"][1]}
    small = render_object(CategoryObject("chair", low, "red", "matte"), cameras)
    large = render_object(CategoryObject("chair", tall, "blue", "matte"), cameras)
    assert large["alpha"].sum() > 1.5 * small["alpha"].sum() > 0  # the same cameras see a bigger chair
    covered = small["alpha"] > 0.5
    red, blue = small["rgb"][covered].mean(0), large["rgb"][large["alpha"] > 0.5].mean(0)
    assert red[0] > 3 * red[2] and blue[2] > 3 * blue[0]
    with pytest.raises(LangfieldError, match="back_height must be in"):
        CategoryObject("chair", {**low, "back_height": 5.0}, "red", "matte").world_object()


def test_category_dataset_loads_with_object_indices(tmp_path):
    from langfield.world.category import write_category_dataset

    items = write_category_dataset(
        tmp_path / "mugs", "mug", objects=3, views=9, resolution=16, seed=4, supersample=1, progress=False
    )
    dataset = load_dataset(DataConfig(data=tmp_path / "mugs"))
    assert len(dataset) == 27 and dataset.objects is not None
    assert sorted(dataset.objects.tolist()) == [0] * 9 + [1] * 9 + [2] * 9
    assert [dataset.filenames[i][-8:-4] for i in dataset.test_indices] == [
        "v000",
        "v008",
    ] * 3  # i % 8 == 0 of each object
    described = json.loads((tmp_path / "mugs" / "objects.json").read_text())
    assert [o["shape"] for o in described["objects"]] == [i.shape for i in items] and len(
        {o["shape"]["radius"] for o in described["objects"]}
    ) == 3
    frames = json.loads((tmp_path / "mugs" / "transforms_train.json").read_text())
    frames["frames"][2]["object_index"] = "two"
    (tmp_path / "mugs" / "transforms_train.json").write_text(json.dumps(frames))
    with pytest.raises(
        LangfieldError, match=r"transforms_train.json frame 2: 'object_index' must be a non-negative integer"
    ):
        load_dataset(DataConfig(data=tmp_path / "mugs"))
    del frames["frames"][2]["object_index"]
    (tmp_path / "mugs" / "transforms_train.json").write_text(json.dumps(frames))
    with pytest.raises(LangfieldError, match="'object_index' is given on some frames but not on all"):
        load_dataset(DataConfig(data=tmp_path / "mugs"))
