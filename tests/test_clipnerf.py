"""clipnerf: one conditional field for a category, a shape and an appearance code per object (auto-decoder)."""

import pytest
import torch
from helpers import assert_clean_error, langfield, write_blender

from langfield.data import DataConfig, load_dataset
from langfield.errors import LangfieldError
from langfield.evaluate import evaluate_run
from langfield.fields.conditional import ConditionalFieldConfig
from langfield.methods.clipnerf.config import ClipNerfConfig, ClipNerfModelConfig
from langfield.run import load_run
from langfield.train.config import TrainerConfig
from langfield.train.trainer import Trainer
from langfield.world.category import write_category_dataset


@pytest.fixture(scope="module")
def mugs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mugs")
    write_category_dataset(folder, "mug", objects=4, views=17, resolution=24, seed=3, supersample=1, progress=False)
    return folder


def _config(data, output, steps: int) -> ClipNerfConfig:
    field = ConditionalFieldConfig(shape_dim=16, appearance_dim=16, resolution=32, deformation_width=32)
    return ClipNerfConfig(output=output, data=DataConfig(data=data), trainer=TrainerConfig(batch_rays=512, max_steps=steps, eval_every=0, progress=False),
                          model=ClipNerfModelConfig(field=field, occupancy_resolution=16))


@pytest.fixture(scope="module")
def mug_run(mugs, tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "mugs"
    Trainer("clipnerf", _config(mugs, run, 500)).train()
    return run


def test_a_category_trains_and_every_object_keeps_its_own_look(mugs, mug_run):
    metrics = evaluate_run(mug_run, progress=False)
    assert metrics["psnr"] > 22.0, metrics["psnr"]  # 8 held-out views of 4 mugs, each rendered with its object's codes
    model = load_run(mug_run, "cpu").model
    dataset = load_dataset(DataConfig(data=mugs))
    origins, directions = dataset.cameras.image_rays(dataset.test_indices[0])
    with torch.no_grad():  # a loaded run shows its trained object 0 to render / export
        shown, zero = model(origins, directions)["rgb"], model.render(origins, directions, model.shape_codes[:1].expand(len(origins), -1),
                                                                       model.appearance_codes[:1].expand(len(origins), -1))["rgb"]
    assert torch.allclose(shown, zero)
    for k in range(model.objects):  # a view of object k is explained best by object k's codes, among all four
        view = next(i for i in dataset.train_indices if int(dataset.objects[i]) == k)
        errors = []
        for j in range(model.objects):
            model.select(j)
            errors.append(float((model.render_camera(dataset.cameras, view)["rgb"] - dataset.rgb(view)).pow(2).mean()))
        assert min(range(4), key=errors.__getitem__) == k, errors
    with pytest.raises(LangfieldError, match="object 4 does not exist"):
        model.select(4)


def test_clipnerf_needs_a_category_dataset(tmp_path):
    data = write_blender(tmp_path / "sphere", count=4, size=16)
    result = langfield("train", "clipnerf", "--data", data, "--output", tmp_path / "run", "--max-steps", "1")
    assert_clean_error(result, "category dataset", "langfield world category")


def test_inversion_recovers_pose_and_object_better_than_the_mean_code(mug_run):
    from langfield.cameras import orbit_cameras
    from langfield.methods.clipnerf.inversion import InversionConfig, invert

    model = load_run(mug_run, "cpu").model
    truth, config = 2, InversionConfig(resolution=24)  # the tall orange mug
    center = torch.tensor(config.center)
    seen = orbit_cameras(torch.tensor(100.0), torch.tensor(35.0), 1.6, config.fov, 24, center=center)
    unseen = orbit_cameras(torch.tensor(250.0), torch.tensor(20.0), 1.6, config.fov, 24, center=center)
    model.select(truth)
    image, other_side = model.render_camera(seen, 0)["rgb"], model.render_camera(unseen, 0)["rgb"]
    result = invert(model, image, config)
    assert abs((result.azimuth - 100.0 + 180.0) % 360.0 - 180.0) < 20.0 and abs(result.elevation - 35.0) < 20.0
    assert result.error < 0.2 * result.losses["search"][0]

    def unseen_error(shape, appearance) -> float:  # the object from a side the inversion never saw
        model.use_codes(shape, appearance)
        return float((model.render_camera(unseen, 0)["rgb"] - other_side).pow(2).mean())

    mean = unseen_error(model.shape_codes.detach().mean(0), model.appearance_codes.detach().mean(0))
    assert unseen_error(result.shape, result.appearance) < 0.5 * mean  # measured: 0.00031 vs 0.0018
    assert all(p.requires_grad for p in model.parameters())  # the field is left as it was


def test_invert_command_writes_pose_codes_and_pictures(mugs, mug_run, tmp_path):
    import json

    image = mugs / "test" / "o0001_v008.png"
    fast = ["--resolution", "16", "--starts", "2", "--search-steps", "3", "--pose-steps", "5", "--shape-steps", "5",
            "--appearance-steps", "5", "--frames", "4", "--frame-resolution", "16"]
    result = langfield("invert", mug_run, image, "--out", tmp_path / "inv", *fast)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "inv" / "inversion.json").read_text())
    assert summary["mse"] < summary["first_search_mse"] and -90.0 <= summary["elevation"] <= 90.0
    assert all((tmp_path / "inv" / name).is_file() for name in ("codes.safetensors", "comparison.png", "turntable.mp4", "turntable.png"))
    assert_clean_error(langfield("invert", mug_run, tmp_path / "missing.png", "--out", tmp_path / "x"), "image not found")
