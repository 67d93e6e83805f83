"""clipnerf: one conditional field for a category, a shape and an appearance code per object (auto-decoder)."""

import pytest
import torch

from helpers import assert_clean_error, langfield, write_blender
from langfield.apps.evaluate import evaluate_run
from langfield.data import DataConfig, load_dataset
from langfield.errors import LangfieldError
from langfield.fields.conditional import ConditionalFieldConfig
from langfield.methods.clipnerf.config import ClipNerfConfig, ClipNerfModelConfig
from langfield.methods.registry import get_method
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
    return ClipNerfConfig(
        output=output,
        data=DataConfig(data=data),
        trainer=TrainerConfig(batch_rays=512, max_steps=steps, eval_every=0, progress=False),
        model=ClipNerfModelConfig(field=field, occupancy_resolution=16),
    )


@pytest.fixture(scope="module")
def mug_run(mugs, tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "mugs"
    Trainer(get_method("clipnerf"), _config(mugs, run, 500)).train()
    return run


def test_a_category_trains_and_every_object_keeps_its_own_look(mugs, mug_run):
    metrics = evaluate_run(mug_run, progress=False)
    assert metrics["psnr"] > 22.0, metrics["psnr"]  # 8 held-out views of 4 mugs, each rendered with its object's codes
    model = load_run(mug_run, "cpu").model
    dataset = load_dataset(DataConfig(data=mugs))
    origins, directions = dataset.cameras.image_rays(dataset.test_indices[0])
    with torch.no_grad():  # a loaded run shows its trained object 0 to render / export
        shown, zero = (
            model(origins, directions)["rgb"],
            model.render(
                origins,
                directions,
                model.shape_codes[:1].expand(len(origins), -1),
                model.appearance_codes[:1].expand(len(origins), -1),
            )["rgb"],
        )
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


def test_each_ray_is_rendered_with_its_own_codes_in_a_mixed_batch(mugs, mug_run):
    """A batch mixing objects (as training's ray batches do) renders each ray as a batch of its object alone, also
    when some rays miss the box (they march nothing, and the others' codes must not shift onto other rays)."""
    model = load_run(mug_run, "cpu").model
    dataset = load_dataset(DataConfig(data=mugs))
    origins, directions = dataset.cameras.image_rays(dataset.test_indices[0])
    directions = directions.clone()
    directions[::5] = -directions[::5]  # these rays look away from the object: they miss the box
    objects = torch.arange(len(origins)) % 2  # object 0 and object 1, ray by ray

    def render(which):
        return model.render(origins, directions, model.shape_codes[which], model.appearance_codes[which])["rgb"]

    with torch.no_grad():
        mixed = render(objects)
        alone = torch.where(objects[:, None] == 0, render(torch.zeros_like(objects)), render(torch.ones_like(objects)))
    assert float((alone[objects == 0] - alone[objects == 1].mean(0)).abs().max()) > 0.01  # the objects differ
    assert torch.allclose(mixed, alone, atol=1e-5)


def test_clipnerf_needs_a_category_dataset(tmp_path):
    data = write_blender(tmp_path / "sphere", count=4, size=16)
    result = langfield("train", "clipnerf", "--data", data, "--output", tmp_path / "run", "--max-steps", "1")
    assert_clean_error(result, "category dataset", "langfield world category")


def test_inversion_recovers_pose_and_object_better_than_the_mean_code(mug_run):
    from langfield.cameras import orbit_cameras
    from langfield.methods.clipnerf.inversion import InversionConfig, invert

    model = load_run(mug_run, "cpu").model
    from langfield.methods.clipnerf.views import ObjectViews

    truth, config = 2, InversionConfig(resolution=24)  # the tall orange mug
    views = ObjectViews.of(model.scene.cameras)  # the inversion's defaults come from the run's cameras too
    center = torch.tensor(views.center)
    seen = orbit_cameras(torch.tensor(100.0), torch.tensor(35.0), 1.6, views.fov, 24, center=center)
    unseen = orbit_cameras(torch.tensor(250.0), torch.tensor(20.0), 1.6, views.fov, 24, center=center)
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
    fast = [
        "--resolution",
        "16",
        "--starts",
        "2",
        "--search-steps",
        "3",
        "--pose-steps",
        "5",
        "--shape-steps",
        "5",
        "--appearance-steps",
        "5",
        "--frames",
        "4",
        "--frame-resolution",
        "16",
    ]
    result = langfield("invert", mug_run, image, "--out", tmp_path / "inv", *fast)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "inv" / "inversion.json").read_text())
    assert summary["mse"] < summary["first_search_mse"] and -90.0 <= summary["elevation"] <= 90.0
    assert all(
        (tmp_path / "inv" / name).is_file()
        for name in ("codes.safetensors", "comparison.png", "turntable.mp4", "turntable.png")
    )
    assert_clean_error(
        langfield("invert", mug_run, tmp_path / "missing.png", "--out", tmp_path / "x"), "image not found"
    )


def test_a_mapper_step_lowers_the_clip_loss(mug_run):
    from langfield.encoders import load_encoder
    from langfield.methods.clipnerf.mappers import ClipMappers, mapper_losses
    from langfield.methods.clipnerf.views import ObjectViews

    model = load_run(mug_run, "cpu").model
    encoder = load_encoder("langfield-mini")
    target = encoder.encode_text(["a green mug"]).expand(4, -1)  # none of the four mugs is green
    shape, appearance = model.shape_codes.detach(), model.appearance_codes.detach()
    cameras = ObjectViews.of(model.scene.cameras).sample(4, 16, torch.Generator().manual_seed(0))
    mappers = ClipMappers(target.shape[1], shape.shape[1], appearance.shape[1], width=64, depth=2)
    mappers.set_code_statistics(*model.code_statistics())
    optimizer = torch.optim.Adam(mappers.parameters(), lr=1e-2)
    losses = []
    with model.frozen():
        for _ in range(6):
            clip = mapper_losses(model, encoder, mappers, shape, appearance, target, cameras)["clip"]
            losses.append(float(clip.detach()))
            optimizer.zero_grad()
            clip.backward()
            optimizer.step()
    assert all(p.grad is None for p in model.parameters())  # the generator is frozen; only the mappers learn
    assert losses[1] < losses[0] and losses[-1] < losses[0] - 0.02, losses


def test_mappers_and_edit_commands(mug_run, mugs, tmp_path):
    import json
    import shutil

    from langfield.methods.clipnerf.mappers import MapperConfig
    from langfield.methods.clipnerf.views import ObjectViews

    run = tmp_path / "run"
    shutil.copytree(mug_run, run)
    assert_clean_error(
        langfield("edit", run, "a red mug", "--out", tmp_path / "e"), "no mappers here", "langfield mappers"
    )
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red mug\n\na blue mug\n")
    result = langfield(
        "mappers",
        run,
        "--prompts",
        prompts,
        "--steps",
        "12",
        "--batch",
        "2",
        "--resolution",
        "16",
        "--width",
        "32",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    info = json.loads((run / "mappers.json").read_text())
    assert info["prompts"] == ["a red mug", "a blue mug"] and info["steps"] == 12

    fast = ["--frames", "3", "--frame-resolution", "16"]
    result = langfield(
        "edit", run, "a blue mug", "--part", "appearance", "--source", "1", "--out", tmp_path / "e", *fast
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "e" / "edit.json").read_text())
    assert summary["silhouette_iou"] == 1.0  # an appearance edit cannot move the shape
    assert summary["edit_seconds"] < 1.0 and summary["source"] == "training object 1"
    assert all(
        (tmp_path / "e" / name).is_file()
        for name in ("before.mp4", "after.mp4", "before_after.png", "codes.safetensors")
    )
    exemplar = sorted((mugs / "train").glob("o0002_*.png"))[0]
    result = langfield("edit", run, "--exemplar", exemplar, "--out", tmp_path / "x", *fast)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "x" / "edit.json").read_text())["exemplar"] == str(exemplar)

    # a packed run (how the embedded chair ships) carries its mappers and renders like the folder
    from langfield.methods.clipnerf.mappers import ClipMappers
    from langfield.packed import pack_loaded_run

    loaded = load_run(run, "cpu")
    pack_loaded_run(
        loaded,
        tmp_path / "packed.safetensors",
        {
            "mappers": ClipMappers.load(run / "mappers.safetensors")[0].state(
                "langfield-mini", MapperConfig(width=32), {}
            )
        },
    )
    packed = load_run(tmp_path / "packed.safetensors", "cpu")
    cameras = ObjectViews.of(loaded.scene.cameras).ring(1, 16)
    assert (
        packed.model.render_camera(cameras, 0)["rgb"] - loaded.model.render_camera(cameras, 0)["rgb"]
    ).abs().max() < 0.02  # float16 weights
    result = langfield("edit", tmp_path / "packed.safetensors", "a red mug", "--out", tmp_path / "p", *fast)
    assert result.returncode == 0, result.stderr

    assert_clean_error(langfield("edit", run, "a mug", "--exemplar", exemplar), "either a PROMPT or --exemplar")
    assert_clean_error(langfield("edit", run, "  "), "prompt is empty")
    assert_clean_error(langfield("edit", run, "a mug", "--source", "nowhere.png"), "--source must be")
    assert_clean_error(langfield("mappers", run, "--prompts", tmp_path / "none.txt"), "none.txt")


def test_train_renders_a_category_when_asked(tmp_path):
    import json

    args = [
        "train",
        "clipnerf",
        "--category",
        "mug",
        "--objects",
        "2",
        "--views",
        "9",
        "--resolution",
        "16",
        "--output",
        tmp_path / "run",
        "--max-steps",
        "3",
        "--no-progress",
        "--model.field.shape-dim",
        "8",
        "--model.field.appearance-dim",
        "8",
    ]
    result = langfield(*args)
    assert result.returncode == 0, result.stderr
    described = json.loads((tmp_path / "run" / "category-data" / "objects.json").read_text())
    assert described["category"] == "mug" and len(described["objects"]) == 2 and described["resolution"] == 16
    assert load_run(tmp_path / "run", "cpu").model.objects == 2
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert saved["data"]["data"].endswith("category-data")  # eval finds the rendered dataset


def test_patches_at_full_scale_reproduce_the_image():
    from langfield.methods.clipnerf.adversarial import real_patches, sample_patches

    images = torch.rand(2, 8, 8, 3)
    u, v = sample_patches(3, 8, 8, 8, min_scale=1.0)  # scale 1, patch = image size: every pixel centre exactly
    assert torch.allclose(real_patches(images, torch.tensor([1, 0, 1]), u, v), images[[1, 0, 1]], atol=1e-6)
    u, v = sample_patches(64, 4, 32, 16, min_scale=0.25, generator=torch.Generator().manual_seed(0))
    assert float(u.min()) > 0 and float(u.max()) < 32 and float(v.min()) > 0 and float(v.max()) < 16  # inside the image


def test_the_adversarial_regime_trains_a_discriminator_and_resumes(mugs, tmp_path):
    import json

    from langfield.methods.clipnerf.config import AdversarialConfig

    config = _config(mugs, tmp_path / "gan", 26)
    config.model.regime = "adversarial"
    config.model.adversarial = AdversarialConfig(patch=8, images=4, discriminator_width=16, bank=3)
    Trainer(get_method("clipnerf"), config).train()
    log = [json.loads(line) for line in (tmp_path / "gan" / "train_log.jsonl").read_text().splitlines()]
    assert (
        log[-1]["step"] == 25 and log[-1]["critic_real_score"] > log[-1]["critic_fake_score"]
    )  # it tells real from rendered
    assert "critic_optimizer" in torch.load(tmp_path / "gan" / "checkpoint.pt", weights_only=False)
    run = load_run(tmp_path / "gan", "cpu")
    assert run.model.objects == 3 and not run.model.uses_ray_batches
    config.trainer.max_steps, config.trainer.resume = 28, True
    Trainer(get_method("clipnerf"), config).train()
    assert load_run(tmp_path / "gan", "cpu").step == 28
    assert_clean_error(langfield("eval", tmp_path / "gan"), "adversarially trained", "clipnerf_kid")


def test_kernel_distance_tells_distributions_apart():
    from langfield.train.metrics import kernel_distance

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(200, 8, generator=g), torch.randn(200, 8, generator=g)
    same, _ = kernel_distance(a, b, generator=g)
    shifted, _ = kernel_distance(a, b + 0.5, generator=g)
    assert abs(same) < 0.1 < shifted


def test_the_embedded_chair_model_edits_colour_without_touching_the_shape(tmp_path):
    import json

    result = langfield(
        "edit",
        "chair",
        "a yellow chair",
        "--part",
        "appearance",
        "--source",
        "7",
        "--frames",
        "0",
        "--frame-resolution",
        "48",
        "--out",
        tmp_path / "e",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "e" / "edit.json").read_text())
    assert summary["silhouette_iou"] == 1.0
    assert summary["similarity_after"] > summary["similarity_before"] + 0.2, summary  # measured 0.43 -> 0.84 at 64 px
    before, after = summary["mean_colour_before"], summary["mean_colour_after"]
    assert (
        after[0] > before[0] and after[1] > before[1] and after[2] < before[2]
    )  # a black chair turns yellow: more red and green, less blue
