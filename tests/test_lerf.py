"""lerf: crop-pyramid supervision, relevancy, caching, detached language losses, and a query end to end."""

import json
import math

import pytest
import torch

from helpers import assert_clean_error, langfield
from langfield.methods.lerf.pyramid import (
    CropPyramid,
    Level,
    PyramidSettings,
    crop_lattice,
    load_or_build,
    sample_dense,
)
from langfield.methods.lerf.query import relevancy


def linear_level(fraction, start, step, g, n=2):
    """Embeddings that are a known linear function of the crop centre: e = (x, y, 10 * fraction, view)."""
    ys, xs = torch.meshgrid(start + step * torch.arange(g), start + step * torch.arange(g), indexing="ij")
    table = torch.stack([xs, ys, torch.full_like(xs, 10 * fraction), torch.zeros_like(xs)], dim=-1)
    table = table[None].repeat(n, 1, 1, 1)
    table[1, ..., 3] = 1.0
    return Level(fraction, fraction * 40, start, step, table.half())


def test_pyramid_interpolates_between_crop_centres_and_scales():
    pyramid = CropPyramid([linear_level(0.1, 2.0, 2.0, 19), linear_level(0.5, 10.0, 5.0, 5)], width=40, height=40)
    views = torch.tensor([0, 1, 0])
    pixels = torch.tensor([7 * 40 + 13, 20 * 40 + 20, 11 * 40 + 9])  # (x, y) = (13, 7), (20, 20), (9, 11)
    fractions = torch.tensor([0.1, 0.3, 0.5])
    target = pyramid.target(views, pixels, fractions)
    # pixel centres are at +0.5; both levels are linear in (x, y) inside their lattices, so the answer is exact
    expected = torch.tensor([[13.5, 7.5, 1.0, 0.0], [20.5, 20.5, 3.0, 1.0], [10.0, 11.5, 5.0, 0.0]])
    expected[2, 0] = 10.0  # x = 9.5 lies left of the coarse level's first centre (10): clamped to the border
    assert torch.allclose(target, expected, atol=0.02), target
    single = CropPyramid([linear_level(0.1, 2.0, 2.0, 19)], width=40, height=40)  # the single-scale ablation
    assert torch.allclose(single.target(views[:1], pixels[:1], fractions[2:]), expected[:1], atol=0.02)


def test_crop_lattice_covers_the_image():
    start, step, count = crop_lattice(100, 20, 0.5)
    assert start == 10 and math.isclose(start + step * (count - 1), 90) and step <= 10
    assert crop_lattice(30, 50, 0.5) == (15, 1.0, 1)


def test_dense_features_are_sampled_at_pixel_centres():
    features = torch.arange(16.0).view(1, 4, 4, 1)  # value = 4 * row + column
    pixels = torch.tensor([0, 7 * 8 + 7, 3 * 8 + 4])  # an 8x8 image over a 4x4 feature grid
    values = sample_dense(features, torch.zeros(3, dtype=torch.long), pixels, 8, 8)[:, 0]
    # pixel (0,0) -> cell (-0.25,-0.25) clamped to 0; pixel (7,7) -> (3.25, 3.25) clamped to 15; (4,3) -> (1.75, 1.25)
    assert torch.allclose(values, torch.tensor([0.0, 15.0, 4 * 1.25 + 1.75]))


def test_relevancy_matches_a_hand_computation():
    embedding = torch.tensor([[1.0, 0.0]])
    query = torch.tensor([[0.6, 0.8]])
    canonical = torch.tensor([[0.0, 1.0], [0.8, 0.6]])
    value = relevancy(embedding, query, canonical)
    # softmax(10 * [0.6, 0.0])[0] and softmax(10 * [0.6, 0.8])[0]; the minimum is the second
    first = math.exp(6) / (math.exp(6) + math.exp(0))
    second = math.exp(6) / (math.exp(6) + math.exp(8))
    assert value.shape == (1, 1) and math.isclose(float(value), min(first, second), rel_tol=1e-5)


def test_pyramid_cache_is_reused_and_invalidated(tmp_path, monkeypatch):
    from langfield.encoders import load_encoder
    from langfield.methods.lerf import pyramid as module

    encoder = load_encoder("langfield-mini")
    images = torch.rand(2, 24, 24, 3)
    calls = []
    real = module.build_pyramid
    monkeypatch.setattr(module, "build_pyramid", lambda *a, **k: calls.append(1) or real(*a, **k))
    settings = PyramidSettings((0.25, 0.5), 0.5)
    first, dense, file = load_or_build(images, encoder, encoder, settings, tmp_path, progress=False)
    again, _, same = load_or_build(images, encoder, encoder, settings, tmp_path, progress=False)
    assert len(calls) == 1 and same == file
    assert torch.equal(first.levels[0].embeddings, again.levels[0].embeddings)
    assert dense.shape[0] == 2 and first.levels[1].embeddings.shape[:3] == (2, 3, 3)
    load_or_build(images, encoder, encoder, PyramidSettings((0.25, 0.5), 0.25), tmp_path, progress=False)
    load_or_build(images, encoder, encoder, PyramidSettings((0.25,), 0.5), tmp_path, progress=False)
    load_or_build(images.flip(1), encoder, encoder, settings, tmp_path, progress=False)
    load_or_build(images, load_encoder("langfield-mini-random"), encoder, settings, tmp_path, progress=False)
    assert len(calls) == 5 and len(list(tmp_path.glob("*.pt"))) == 5
    file.write_bytes(b"damaged")
    load_or_build(images, encoder, encoder, settings, tmp_path, progress=False)
    assert len(calls) == 6  # a damaged cache file is rebuilt


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    from langfield.world.dataset import write_scene_dataset

    out = tmp_path_factory.mktemp("lerf_scene")
    write_scene_dataset(
        out, seed=3, objects=2, views=24, resolution=48, kinds=("sphere", "cube"), colors=("red", "blue")
    )
    return out


def coarse_lerf(scene, cache_dir, **changes):
    """A prepared small lerf model on ``scene`` with one coarse level of crops, and a batch of 256 training rays."""
    from langfield.core import SceneInfo
    from langfield.data import DataConfig, load_dataset
    from langfield.methods.lerf.config import LerfModelConfig
    from langfield.methods.lerf.model import LerfModel
    from langfield.train.trainer import RayBatches

    dataset = load_dataset(DataConfig(data=scene))
    config = LerfModelConfig(
        resolution=24,
        initial_resolution=16,
        language_resolution=16,
        cache_dir=str(cache_dir),
        crop_fractions=(0.5,),
        crop_stride=1.0,
        **changes,
    )
    model = LerfModel(config, SceneInfo.from_dataset(dataset))
    model.prepare(dataset, progress=False)
    batch = RayBatches(dataset, torch.device("cpu"), torch.Generator().manual_seed(0)).sample(256, False)
    return model, batch


def test_language_losses_leave_density_and_colour_untouched(scene, tmp_path):
    # one coarse level of crops is supervision enough to see where the language losses' gradients go
    model, batch = coarse_lerf(scene, tmp_path)
    outputs = model(batch.origins, batch.directions, batch.background)
    losses = model.loss(outputs, batch)
    (losses["clip"] + losses["dino"]).backward()
    assert model.field.density_grid.values.grad is None and model.field.feature_grid.values.grad is None
    assert all(p.grad is None for p in model.field.color_mlp.parameters())
    assert model.language_grid.values.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.language_head.parameters())


def test_real_backbone_stride_8_map_as_dino_targets(scene, tmp_path):
    model, batch = coarse_lerf(scene, tmp_path, dense_encoder="efficientnet-lite0@64")
    _, dense = model.supervision
    assert dense.shape[1:] == (8, 8, 40)  # 64 px / stride 8, the 40 channels of EfficientNet-Lite0's stage 3
    assert dense.float().std() > 0.01  # real features, not a constant
    losses = model.loss(model(batch.origins, batch.directions, batch.background), batch)
    losses["dino"].backward()
    assert torch.isfinite(losses["dino"]) and model.language_grid.values.grad.abs().sum() > 0


def test_query_errors(tmp_path):
    nerf_run = tmp_path / "nerf"
    nerf_run.mkdir()
    (nerf_run / "config.json").write_text(json.dumps({"method": "nerf", "config": {}}))
    assert_clean_error(langfield("query", nerf_run, "  "), "non-empty")
    assert_clean_error(langfield("query", nerf_run, "a red sphere"), "'nerf' run", "lerf")
    assert_clean_error(langfield("query", tmp_path / "missing", "a red sphere"), "not a langfield run")


@pytest.fixture(scope="module")
def trained(scene, tmp_path_factory):
    """A tiny lerf run on the two-object scene, trained for a fixed number of steps (not seconds: the outcome must
    not depend on the machine's load)."""
    run = tmp_path_factory.mktemp("lerf_run") / "run"
    result = langfield(
        "train",
        "lerf",
        "--data",
        scene,
        "--output",
        run,
        "--max-steps",
        "300",
        "--seed",
        "0",
        "--no-progress",
        "--model.resolution",
        "48",
        "--model.initial-resolution",
        "32",
        "--model.grow-at",
        "150",
        "--model.language-resolution",
        "24",
        "--model.crop-fractions",
        "0.15",
        "0.3",
        "0.5",
        "--model.cache-dir",
        "none",
        "--eval-every",
        "0",
        "--batch-rays",
        "512",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return run


def test_tiny_run_finds_the_objects_in_a_held_out_view(scene, trained, tmp_path):
    import numpy as np
    from PIL import Image

    from langfield.apps.localization import mask_path
    from langfield.apps.query import open_query
    from langfield.data import DataConfig, load_dataset

    objects = {
        f"a {o['attributes']['color']} {o['attributes']['kind']}": o["id"]
        for o in json.loads((scene / "objects.json").read_text())["objects"]
    }
    assert len(objects) == 2  # a red cube and a red sphere: told apart by shape alone
    dataset = load_dataset(DataConfig(data=scene))
    engine = open_query(trained)
    hits = []
    for index in dataset.test_indices:
        mask = np.asarray(Image.open(mask_path(scene, dataset.filenames[index])))
        answer = engine.view(list(objects), index, cameras=dataset.cameras)
        for (x, y), text in zip(answer.best_pixel.tolist(), objects):
            if (mask == objects[text]).any():
                hits.append(int(mask[y, x]) == objects[text])
    assert len(hits) >= 4 and sum(hits) / len(hits) >= 0.75, hits
    # the CLI: heat-map, raw relevancy and best point; then the errors of a real lerf run
    out = tmp_path / "q"
    result = langfield(
        "query", trained, "a red sphere", "--view", "1", "--out", out, "--export", tmp_path / "cloud.ply"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((out / "a_red_sphere_view1.json").read_text())
    assert np.load(out / "a_red_sphere_view1.npy").shape == (48, 48) and (out / "a_red_sphere_view1.png").is_file()
    assert 0.5 <= record["relevancy"] <= 1 and len(record["best_point"]) == 3
    assert (tmp_path / "cloud.ply").read_bytes().startswith(b"ply")
    # the evaluation protocol over every caption wording, merged into metrics.json
    assert langfield("eval", trained, "--task", "localization").returncode == 0
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["queries"] == len(json.loads((trained / "localization.json").read_text())["details"]) > 0
    assert metrics["localization_train_wording"] >= 0.6, metrics
    assert_clean_error(langfield("query", trained, "a red sphere", "--view", "999"), "view index 999", "out of range")
    assert_clean_error(langfield("query", trained, ""), "non-empty")


def test_the_demo_query_grid_shows_the_render_and_a_heat_map_per_query(scene, trained, tmp_path):
    """The grid `langfield demo` writes (queries/queries.png): it once came out pure white."""
    import numpy as np
    from PIL import Image

    from langfield.cli.demo import write_demo_queries

    texts = [o["captions"]["train"][0] for o in json.loads((scene / "objects.json").read_text())["objects"]]
    picture = np.asarray(Image.open(write_demo_queries(trained, texts, tmp_path / "queries"))).astype(np.float32)
    label = 14
    tiles = np.split(picture[label:], len(texts) + 1, axis=1)  # ground truth, then one tile per query
    assert picture.mean() < 250 and all(tile.std() > 10 for tile in tiles)  # not blank, not one flat colour
    assert np.abs(tiles[1] - tiles[2]).mean() > 2  # each query shows its own heat-map
    heat = [np.abs(tile - tiles[0]).mean() for tile in tiles[1:]]
    assert min(heat) > 1, heat  # a heat-map over the render, not the ground truth repeated
