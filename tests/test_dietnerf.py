"""DietNeRF: few-view selection, random poses, the semantic-consistency loss and its gradient, the simplified-NeRF
preset."""

import json
import math

import pytest
import torch

from helpers import assert_clean_error, langfield
from langfield.cameras.paths import _plane_basis
from langfield.checks import validate
from langfield.core import SceneInfo
from langfield.data import load_dataset
from langfield.data.config import DataConfig
from langfield.errors import LangfieldError
from langfield.methods.dietnerf.config import DietNerfModelConfig
from langfield.methods.dietnerf.model import DietNerfModel

TINY_GRID = dict(resolution=32, initial_resolution=24, grow_at=(1000,), occupancy_resolution=16)


def test_num_views_is_deterministic_by_seed_and_never_held_out(sphere_scene):
    full = load_dataset(DataConfig(data=sphere_scene))
    first = load_dataset(DataConfig(data=sphere_scene, num_views=5, view_seed=3)).train_indices
    again = load_dataset(DataConfig(data=sphere_scene, num_views=5, view_seed=3)).train_indices
    other = load_dataset(DataConfig(data=sphere_scene, num_views=5, view_seed=4)).train_indices
    assert first == again and first != other
    assert len(first) == 5 and set(first) <= set(full.train_indices)
    few = load_dataset(DataConfig(data=sphere_scene, num_views=5, view_seed=3))
    assert few.test_indices == full.test_indices  # evaluation is unchanged
    assert load_dataset(DataConfig(data=sphere_scene, view_ids=(9, 2))).train_indices == [2, 9]
    assert load_dataset(DataConfig(data=sphere_scene, view_ids=("9,2,3",))).train_indices == [2, 3, 9]


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(num_views=0), "--num-views must be between 1 and the 21 training views, got 0"),
        (dict(num_views=22), "--num-views must be between 1 and the 21 training views, got 22"),
        (dict(view_ids=(8,)), "view 8 is a held-out view"),
        (dict(view_ids=(30,)), "view 30 does not exist"),
        (dict(view_ids=(1, 1)), "listed twice"),
        (dict(num_views=3, view_ids=(1, 2)), "not both"),
        (dict(view_ids=("2,x",)), "must be view indices such as 2,15,30, got '2,x'"),
        (dict(view_ids=(",",)), "--view-ids is empty"),
    ],
)
def test_bad_view_selection_names_the_problem(sphere_scene, options, message):
    with pytest.raises(LangfieldError, match=message):
        load_dataset(DataConfig(data=sphere_scene, **options))


def _model(scene_path, **options) -> tuple[DietNerfModel, object]:
    dataset = load_dataset(DataConfig(data=scene_path, num_views=6))
    config = DietNerfModelConfig(**TINY_GRID, semantic_resolution=24, **options)
    model = DietNerfModel(config, SceneInfo.from_dataset(dataset))
    model.prepare(dataset, progress=False)
    return model, dataset


def test_random_poses_lie_in_the_configured_ranges_and_look_at_the_centre(sphere_scene):
    center = torch.tensor([0.1, -0.2, 0.05])
    model, _ = _model(
        sphere_scene,
        radius_range=(2.0, 3.0),
        elevation_range=(20.0, 60.0),
        azimuth_range=(30.0, 120.0),
        center=tuple(center.tolist()),
        up=(0.0, 0.0, 1.0),
    )
    cameras = model.sample_cameras(500, torch.Generator().manual_seed(0))
    assert (cameras.width, cameras.height) == (24, 24)
    offset = cameras.origins - center
    radius = offset.norm(dim=-1)
    assert radius.min() >= 2.0 - 1e-5 and radius.max() <= 3.0 + 1e-5
    elevation = torch.rad2deg(torch.asin(offset[:, 2] / radius))
    assert elevation.min() >= 20.0 - 1e-3 and elevation.max() <= 60.0 + 1e-3
    a, b = _plane_basis(torch.tensor([0.0, 0.0, 1.0]))
    azimuth = torch.rad2deg(torch.atan2(offset @ b, offset @ a)) % 360
    assert azimuth.min() >= 30.0 - 1e-3 and azimuth.max() <= 120.0 + 1e-3
    assert azimuth.max() - azimuth.min() > 80  # the range is covered, not a single direction
    forward = -cameras.c2w[:, :, 2]
    assert torch.allclose(forward, -offset / radius[:, None], atol=1e-5)  # every camera looks at the centre
    up = cameras.c2w[:, :, 1]
    assert (up[:, 2] > 0).all()  # upright
    rotation = cameras.c2w[:, :, :3]
    assert torch.allclose(rotation.transpose(1, 2) @ rotation, torch.eye(3).expand(500, 3, 3), atol=1e-5)

    # the defaults: the radius of the training cameras (3 for the sphere scene), the upper hemisphere
    model, _ = _model(sphere_scene)
    cameras = model.sample_cameras(500, torch.Generator().manual_seed(0))
    offset = cameras.origins - model.pose_center
    assert torch.allclose(offset.norm(dim=-1), torch.tensor(3.0), atol=1e-4)
    sin_elevation = offset @ model.pose_up / 3.0  # the up axis defaults to the training cameras' mean up vector
    assert sin_elevation.min() >= -1e-5 and sin_elevation.max() > 0.9
    assert abs(float(sin_elevation.mean()) - 0.5) < 0.05  # uniform over the hemisphere's area: mean height r/2


def test_semantic_loss_gradient_reaches_the_field_parameters(sphere_scene):
    model, _ = _model(sphere_scene)
    model.train()
    loss = model.semantic_loss(torch.Generator().manual_seed(0))
    assert 0.0 <= float(loss.detach()) <= 2.0
    loss.backward()
    field = model.field
    for name, parameter in [
        ("density grid", field.density_grid.values),
        ("feature grid", field.feature_grid.values),
        ("colour MLP", next(field.color_mlp.parameters())),
    ]:
        assert parameter.grad is not None and float(parameter.grad.abs().sum()) > 0, name
    assert all(p.grad is None for p in model.encoder.parameters())  # the encoder is frozen


def test_semantic_loss_runs_every_k_steps_from_start_until_the_fraction_of_training(sphere_scene):
    model, _ = _model(sphere_scene, semantic_every=5, semantic_start=10, semantic_until=0.5)
    generator = torch.Generator().manual_seed(0)
    active = []
    for step in range(40):  # a run of 40 steps: progress step / 40
        model.before_step(step, step / 40, generator)
        if model.step_losses(step, generator):
            active.append(step)
    assert active == [10, 15]  # from step 20 on (half of training) it fits the training views alone
    for bad in (0, 1.5, 1500):  # refused where the option is parsed (and by the trainer, for configs built in Python)
        with pytest.raises(LangfieldError, match=rf"--model.semantic-until must be in \(0, 1\], got {bad}"):
            validate(DietNerfModelConfig(semantic_until=bad), "model.")


def test_chunked_render_has_the_gradient_of_the_whole_render(sphere_scene):
    """Gradient checkpointing over chunks changes memory, not the result."""
    model, _ = _model(sphere_scene)
    model.eval()  # no jitter: both renders march the same samples
    camera = model.sample_cameras(1, torch.Generator().manual_seed(1))
    grads = []
    for chunk in (24 * 24, 100):
        model.config.semantic_chunk = chunk
        model.zero_grad()
        image = model.render_with_grad(camera)
        (image * torch.linspace(0, 1, 3)).sum().backward()
        grads.append((image.detach(), model.field.density_grid.values.grad.clone()))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-6)
    assert float(grads[0][1].abs().sum()) > 0
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-6)


def test_dietnerf_trains_from_the_cli_with_few_views(sphere_scene, tmp_path):
    run = tmp_path / "diet"
    result = langfield(
        "train",
        "dietnerf",
        "--data",
        sphere_scene,
        "--output",
        run,
        "--num-views",
        4,
        "--max-steps",
        60,
        "--eval-every",
        0,
        "--no-progress",
        "--model.semantic-every",
        5,
        "--model.semantic-resolution",
        24,
        "--model.resolution",
        32,
        "--model.initial-resolution",
        24,
    )
    assert result.returncode == 0, result.stderr
    assert "4 train (views" in result.stdout
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    semantic = [entry["semantic"] for entry in log if "semantic" in entry]
    assert semantic and all(0 <= s <= 2 and math.isfinite(s) for s in semantic)
    saved = json.loads((run / "config.json").read_text())["config"]
    assert saved["data"]["num_views"] == 4 and saved["model"]["semantic_every"] == 5

    bad = langfield("train", "dietnerf", "--data", sphere_scene, "--output", tmp_path / "bad", "--view-ids", 8)
    assert_clean_error(bad, "view 8 is a held-out view")
    bad = langfield(
        "train", "dietnerf", "--data", sphere_scene, "--output", tmp_path / "bad2", "--model.elevation-range", 10, 100
    )
    assert_clean_error(bad, "--model.elevation-range must be in [-90, 90]", "100")


def test_simplified_nerf_preset_is_coarse_only_and_view_independent(sphere_scene, tmp_path):
    from langfield.methods.registry import get_method

    config = get_method("simplified-nerf").config()
    assert config.model.fine_samples == 0 and not config.model.view_dependent
    assert config.model.position_frequencies == 5 and config.model.lr == pytest.approx(1e-5)
    result = langfield(
        "train",
        "simplified-nerf",
        "--data",
        sphere_scene,
        "--output",
        tmp_path / "simple",
        "--num-views",
        4,
        "--max-steps",
        3,
        "--batch-rays",
        64,
        "--eval-every",
        0,
        "--no-progress",
        "--model.width",
        32,
        "--model.coarse-samples",
        16,
    )
    assert result.returncode == 0, result.stderr
    from langfield.run import load_run

    model = load_run(tmp_path / "simple").model
    assert model.fine is None
    directions = torch.nn.functional.normalize(torch.randn(5, 3), dim=-1)
    point = torch.zeros(5, 3)
    colors = model.color(point, directions)
    assert torch.allclose(colors, colors[:1].expand(5, 3))  # no view dependence
