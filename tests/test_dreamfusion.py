"""DreamFusion: score distillation (sign, timesteps, weighting), view-dependent prompts, the diffusion backends
(embedded prior, tiny Stable Diffusion and pixel-space diffusers models built here), the 3D model and
`langfield generate`."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import assert_clean_error, interrupt_on_call, langfield
from langfield.cameras import orbit_cameras
from langfield.checks import validate
from langfield.errors import LangfieldError
from langfield.guidance.embedded import DEFAULT_UNET, EmbeddedPrior
from langfield.guidance.prior import DiffusionPrior, TextCondition, model_to_pixels, pixels_to_model
from langfield.guidance.prompts import PromptProcessor, ViewPromptConfig, check_prompt, view_name, view_prompt
from langfield.guidance.sds import ScoreDistillation, SDSConfig, timestep_range
from langfield.methods.dreamfusion.config import DreamFusionModelConfig
from langfield.methods.dreamfusion.model import DreamFusionModel, initial_scene
from langfield.train.checkpoint import load_checkpoint


class PointPrior(DiffusionPrior):
    """The exact denoiser of a data distribution that is one image ``target``: ε(x_t) = (x_t − √ᾱ y) / √(1 − ᾱ)."""

    name = "point"
    resolution = 8

    def __init__(self, target: torch.Tensor):
        t = torch.linspace(0, 1, 1001)[1:]
        super().__init__(torch.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2)
        self.target = pixels_to_model(target[None], self.resolution)

    def text_condition(self, texts):
        return TextCondition(torch.zeros(len(texts), 1, 4))

    def _denoiser(self, x, t, condition):
        a = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        return (x - a.sqrt() * self.target) / (1 - a).sqrt()

    def encode_images(self, images):
        return pixels_to_model(images, self.resolution)

    def decode(self, x):
        return model_to_pixels(x)


def test_sds_moves_a_render_towards_the_prior_and_leaves_one_at_the_target_alone():
    torch.manual_seed(0)
    target = torch.rand(8, 8, 3) * 0.8 + 0.1
    prior = PointPrior(target)
    sds = ScoreDistillation(prior, SDSConfig(guidance_scale=7.5, min_step=0.02, schedule="random", max_step_final=None))
    condition, negative = prior.text_condition(["x"]), prior.text_condition([""])
    starts = {"at target": target.clone(), "elsewhere": torch.full((8, 8, 3), 0.5)}
    moved, distance = {}, {}
    for name, start in starts.items():
        image = start.clone().requires_grad_(True)
        optimizer = torch.optim.SGD([image], lr=0.02)
        generator = torch.Generator().manual_seed(1)
        for _ in range(40):
            loss = sds(image[None], condition, negative, 0.0, generator)["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        moved[name] = float((image.detach() - start).norm())
        distance[name] = (float((start - target).norm()), float((image.detach() - target).norm()))
    assert moved["at target"] < 1e-4 < moved["elsewhere"]
    before, after = distance["elsewhere"]
    assert after < 0.5 * before  # the gradient points towards the prior's image


def test_timestep_range_anneals_and_weighting_options():
    config = SDSConfig(min_step=0.02, max_step=0.98, schedule="random", max_step_final=0.5)
    assert timestep_range(config, 0.0, 1000) == (20, 979)
    assert timestep_range(config, 1.0, 1000) == (20, 500)
    assert timestep_range(SDSConfig(schedule="random", max_step_final=None), 1.0, 1000)[1] == 979
    decreasing = SDSConfig(min_step=0.02, max_step=0.98, schedule="decreasing", window=0.1)
    assert timestep_range(decreasing, 0.0, 1000) == (879, 979)  # the window is clipped to the range
    assert timestep_range(decreasing, 0.5, 1000) == (400, 599)
    assert timestep_range(decreasing, 1.0, 1000) == (20, 120)
    highs = [timestep_range(decreasing, p / 10, 1000)[1] for p in range(11)]
    assert highs == sorted(highs, reverse=True) and len(set(highs)) > 5
    with pytest.raises(LangfieldError, match="min-step < max-step"):
        validate(SDSConfig(min_step=0.9, max_step=0.5))
    with pytest.raises(LangfieldError, match="--model.sds.window"):
        validate(SDSConfig(schedule="decreasing", window=-0.1), "model.sds.")
    with pytest.raises(LangfieldError, match="--model.sds.max-step-final must lie in"):
        validate(SDSConfig(schedule="random", min_step=0.6, max_step_final=0.5), "model.sds.")
    # "decreasing" does not use max-step-final: a min-step above its default 0.5 needs no other change
    validate(SDSConfig(schedule="decreasing", min_step=0.6))


@pytest.mark.parametrize(
    "azimuth, elevation, view",
    [
        (0, 10, "front"),
        (44, 10, "front"),
        (-44, 30, "front"),
        (46, 10, "side"),
        (-90, 0, "side"),
        (134, 5, "side"),
        (136, 5, "back"),
        (180, 20, "back"),
        (-170, 20, "back"),
        (400, 10, "front"),
        (120, 61, "overhead"),
        (0, 89, "overhead"),
    ],
)
def test_view_suffix_by_angle(azimuth, elevation, view):
    assert view_name(azimuth, elevation) == view


def test_view_prompts_follow_the_cameras_and_the_options():
    narrow = ViewPromptConfig(front_angle=20, back_angle=20, overhead_elevation=80)
    assert view_name(30, 70, narrow) == "side"
    assert view_prompt("a red mug", "back") == "a red mug, back view"
    assert view_prompt("a red mug", "back", ViewPromptConfig(enabled=False)) == "a red mug"
    prior = PointPrior(torch.zeros(8, 8, 3))
    processor = PromptProcessor(prior, "  a  red mug ")
    _, texts = processor.condition(torch.tensor([0.0, 90.0, 180.0, 10.0]), torch.tensor([0.0, 0.0, 0.0, 75.0]))
    assert texts == [
        "a red mug, front view",
        "a red mug, side view",
        "a red mug, back view",
        "a red mug, overhead view",
    ]
    for bad in ("", "   ", "\n"):
        with pytest.raises(LangfieldError, match="prompt must be non-empty"):
            check_prompt(bad)


@pytest.fixture(scope="module")
def tiny_pipelines(tmp_path_factory):
    """Stable-Diffusion-like (latent, v-prediction) and IF-like (pixel, learned variance) diffusers folders with
    tiny random weights, built in code."""
    transformers = pytest.importorskip("transformers")
    diffusers = pytest.importorskip("diffusers")
    from langfield.encoders.minilm import minilm_path

    root = tmp_path_factory.mktemp("diffusers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_path())
    torch.manual_seed(0)
    text = transformers.CLIPTextConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=32,
        pad_token_id=0,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    blocks = dict(
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    for name, latent in (("sd", True), ("if", False)):
        folder = root / name
        channels = 4 if latent else 3
        diffusers.UNet2DConditionModel(
            sample_size=8 if latent else 16, in_channels=channels, out_channels=channels if latent else 6, **blocks
        ).save_pretrained(folder / "unet")
        if latent:
            diffusers.AutoencoderKL(
                block_out_channels=(8, 16),
                down_block_types=("DownEncoderBlock2D",) * 2,
                up_block_types=("UpDecoderBlock2D",) * 2,
                latent_channels=4,
                norm_num_groups=8,
                sample_size=16,
            ).save_pretrained(folder / "vae")
        prediction = "v_prediction" if latent else "epsilon"
        diffusers.DDPMScheduler(
            num_train_timesteps=1000, beta_schedule="scaled_linear", prediction_type=prediction
        ).save_pretrained(folder / "scheduler")
        transformers.CLIPTextModel(text).save_pretrained(folder / "text_encoder")
        tokenizer.save_pretrained(folder / "tokenizer")
    return root


@pytest.mark.parametrize("name, latent, shape", [("sd", True, (4, 8, 8)), ("if", False, (3, 16, 16))])
def test_diffusers_priors_give_sds_gradients_to_the_render(tiny_pipelines, name, latent, shape):
    from langfield.guidance import load_prior
    from langfield.guidance.sampling import sample_images

    prior = load_prior(str(tiny_pipelines / name))
    assert prior.latent is latent and prior.sample_shape == shape and prior.resolution == 16
    processor = PromptProcessor(prior, "a red mug", negative="a blurry photo")
    images = torch.rand(2, 24, 24, 3, requires_grad=True)
    condition, _ = processor.condition(torch.tensor([0.0, 120.0]), torch.tensor([10.0, 10.0]))
    out = ScoreDistillation(prior, SDSConfig())(
        images, condition, processor.negative(2), 0.5, torch.Generator().manual_seed(0)
    )
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and images.grad.abs().sum() > 0  # through the VAE encoder for latent SDS
    assert sum(p.grad is not None for p in prior.parameters()) == 0  # the denoiser is never back-propagated
    samples = sample_images(prior, ["a red mug"], steps=3)
    assert samples.shape == (1, 16, 16, 3) and 0 <= float(samples.min()) and float(samples.max()) <= 1


def test_a_folder_that_is_not_a_diffusion_model_is_a_clean_error(tmp_path):
    from langfield.guidance import load_prior

    with pytest.raises(LangfieldError, match="no unet/ folder"):
        load_prior(str(tmp_path))
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(LangfieldError, match="not a langfield-prior weights file"):
        load_prior(str(tmp_path / "junk.safetensors"))


def test_embedded_prior_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    small = {**DEFAULT_UNET, "sample_size": 16, "block_out_channels": [16, 16, 32], "norm_num_groups": 8}
    prior = EmbeddedPrior(small).eval()
    with torch.no_grad():  # weights are stored as float16: start from values that float16 holds exactly
        for tensor in prior.unet.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    prior.save(tmp_path / "p.safetensors", {"steps": 3})
    loaded = EmbeddedPrior.load(tmp_path / "p.safetensors").eval()
    assert loaded.info == {"steps": 3} and loaded.resolution == 16
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([10, 900])
    condition = prior.text_condition(["a red mug, front view", ""])
    assert condition.states.shape == (2, 16, 384) and condition.mask.sum(1).tolist()[1] == 2  # [CLS] [SEP]
    with torch.no_grad():
        assert torch.allclose(prior.predict_noise(x, t, condition), loaded.predict_noise(x, t, condition), atol=1e-5)


def _model(**options) -> DreamFusionModel:
    config = DreamFusionModelConfig(prompt="a red sphere", resolution=24, occupancy_resolution=8, **options)
    torch.manual_seed(0)
    return DreamFusionModel(config, initial_scene(config))


def test_blob_initialisation_and_shading_modes():
    model = _model().eval()
    cameras = orbit_cameras(torch.tensor([0.0]), torch.tensor([20.0]), 2.3, 40.0, 16)
    origins, directions = cameras.image_rays(0)
    background = torch.zeros(len(origins), 3)
    with torch.no_grad():
        out = {
            s: model.render_rays(origins, directions, background, s) for s in ("albedo", "lambertian", "textureless")
        }
    opacity = out["albedo"]["opacity"].view(16, 16)
    assert opacity[8, 8] > 0.95 and opacity[0, 0] < 0.05  # an opaque blob in the middle, empty corners
    grey = out["textureless"]["rgb"].view(16, 16, 3)[8, 8]
    assert torch.allclose(grey, grey.mean().expand(3), atol=1e-5)  # white albedo: grey shading
    assert grey.mean() > 0.5  # the headlight faces the visible surface
    lit, flat = out["lambertian"]["rgb"].view(16, 16, 3)[8, 8], out["albedo"]["rgb"].view(16, 16, 3)[8, 8]
    assert torch.all(lit <= flat + 1e-5)  # ambient + diffuse * cos <= 1
    normal = out["lambertian"]["normal"].view(16, 16, 3)[8, 8]
    assert float(normal @ -directions[8 * 16 + 8]) > 0.6  # the soft blob's normals at the centre face the camera


def test_random_cameras_lie_in_their_ranges_and_look_at_the_centre():
    model = _model(elevation_range=(10.0, 30.0), azimuth_range=(-45.0, 45.0), radius_range=(2.0, 2.5))
    views = model.sample_views(200, torch.Generator().manual_seed(0))
    assert 10 <= views["elevation"].min() and views["elevation"].max() <= 30
    assert -45 <= views["azimuth"].min() and views["azimuth"].max() <= 45
    cameras = orbit_cameras(views["azimuth"], views["elevation"], views["radius"], views["fov"], 8)
    distance = cameras.origins.norm(dim=-1)
    assert torch.allclose(distance, views["radius"], atol=1e-5)
    forward = -cameras.c2w[:, :, 2]
    assert torch.allclose((forward * -cameras.origins / distance[:, None]).sum(-1), torch.ones(200), atol=1e-5)
    elevation = torch.rad2deg(torch.asin(cameras.origins[:, 2] / distance))
    assert torch.allclose(elevation, views["elevation"], atol=1e-3)
    front = cameras.origins[:, 1] < 0  # azimuth within +-45 degrees of the front: the cameras stand on the -y side
    assert bool(front.all())
    with pytest.raises(LangfieldError, match="--model.elevation-range must be in"):  # refused where parsed
        validate(DreamFusionModelConfig(prompt="a red sphere", elevation_range=(0.0, 95.0)), "model.")


def test_step_losses_reach_geometry_material_and_background_not_the_prior():
    model = _model(
        render_resolution=8, albedo_warmup=0.0, textureless_probability=0.0, albedo_probability=0.0, background="mlp"
    )
    model.guidance = _point_guidance(model)
    model.train()
    losses = model.step_losses(0, torch.Generator().manual_seed(0))
    assert {"sds", "orientation", "opacity", "entropy", "total"} <= set(losses)
    losses["total"].backward()
    for name in ("density_grid.values", "feature_grid.values", "albedo_mlp.0.weight", "background_mlp.mlp.0.weight"):
        assert dict(model.named_parameters())[name].grad.abs().sum() > 0, name
    assert not any(name.startswith("guidance") for name in model.state_dict())


def _point_guidance(model):
    from types import SimpleNamespace

    prior = PointPrior(torch.full((8, 8, 3), 0.3))
    return SimpleNamespace(
        prior=prior, sds=ScoreDistillation(prior, model.config.sds), prompts=PromptProcessor(prior, model.config.prompt)
    )


def test_generate_runs_one_step_end_to_end_with_a_tiny_stable_diffusion(tiny_pipelines, tmp_path):
    run = tmp_path / "mug"
    result = langfield(
        "generate",
        "a red mug",
        "--guidance",
        tiny_pipelines / "sd",
        "--output",
        run,
        "--max-steps",
        1,
        "--no-progress",
        "--frames",
        2,
        "--frame-resolution",
        16,
        "--mesh",
        "glb",
        "--mesh-resolution",
        24,
        "--model.render-resolution",
        16,
        "--model.resolution",
        24,
    )
    assert result.returncode == 0, result.stderr
    entry = json.loads((run / "train_log.jsonl").read_text().splitlines()[0])
    assert entry["step"] == 1 and math.isfinite(entry["sds"])
    saved = json.loads((run / "config.json").read_text())
    assert saved["method"] == "dreamfusion" and saved["config"]["model"]["prompt"] == "a red mug"
    assert (run / "turntable.mp4").stat().st_size > 0 and (run / "turntable.png").is_file()
    import trimesh

    mesh = trimesh.load(run / "mesh.glb", force="mesh")
    assert len(mesh.faces) > 0  # the blob after one step
    rendered = langfield("render", run, "--frames", 2, "--out", tmp_path / "frames/", "--scale", 0.25)
    assert rendered.returncode == 0, rendered.stderr
    exported = langfield("export", run, "--format", "obj", "--out", tmp_path / "m.obj", "--resolution", 24)
    assert exported.returncode == 0, exported.stderr
    assert_clean_error(langfield("eval", run), "dreamfusion run has no dataset")


@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt_is_a_one_line_error(prompt, tmp_path):
    assert_clean_error(langfield("generate", prompt, "--output", tmp_path / "x"), "prompt must be non-empty")


def test_train_dreamfusion_without_a_prompt_is_a_one_line_error(tmp_path):
    result = langfield(
        "train",
        "dreamfusion",
        "--output",
        tmp_path / "x",
        "--max-steps",
        1,
        "--model.guidance",
        tmp_path / "missing.safetensors",
    )
    assert_clean_error(result, "prompt must be non-empty")


def test_the_shipped_prior_draws_the_colour_it_is_asked_for():
    from langfield.guidance import load_prior
    from langfield.guidance.sampling import sample_images

    prior = load_prior("langfield-prior")
    images = sample_images(prior, ["a red sphere", "a blue cube"], steps=20, generator=torch.Generator().manual_seed(0))
    centre = images[:, 8:24, 8:24].reshape(2, -1, 3).mean(dim=1)  # the object fills the middle
    assert centre[0, 0] > centre[0, 2] + 0.15 and centre[1, 2] > centre[1, 0] + 0.15


def test_a_short_generation_with_the_embedded_prior_takes_the_prompt_colour(tmp_path):
    from langfield.apps.text_to_3d import render_views
    from langfield.run import load_run

    run = tmp_path / "green"
    result = langfield(
        "generate",
        "a green sphere",
        "--output",
        run,
        "--max-steps",
        150,
        "--no-progress",
        "--frames",
        0,
        "--frame-resolution",
        32,
        "--mesh",
        "none",
    )
    assert result.returncode == 0, result.stderr
    images = render_views(load_run(run, "cpu").model, views=2, resolution=32)
    pixels = images.reshape(-1, 3)
    solid = pixels[(pixels.max(dim=1).values - pixels.min(dim=1).values) > 0.15]  # coloured: not the white background
    assert len(solid) > 50
    r, g, b = solid.mean(dim=0).tolist()
    assert g > r + 0.1 and g > b + 0.1


def test_prior_training_interrupted_and_resumed_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    from langfield.apps import prior_training as training

    def config(name: str, **changes) -> training.PriorTrainConfig:
        return training.PriorTrainConfig(
            output=tmp_path / f"{name}.safetensors",
            cache=tmp_path / "cache",
            checkpoint=tmp_path / f"{name}.pt",
            images=12,
            resolution=8,
            widths=(16, 16, 16),
            steps=5,
            max_seconds=None,
            batch=4,
            progress=False,
            **changes,
        )

    straight = training.train_prior(config("straight"))
    with monkeypatch.context() as patch:
        interrupt_on_call(patch, training, "batch_captions", 4)  # in the middle of the 4th step
        with pytest.raises(KeyboardInterrupt):
            training.train_prior(config("resumed"))
    assert (
        load_checkpoint(tmp_path / "resumed.pt", method="langfield-prior")["step"] == 4
    )  # the step finished, then saved
    resumed = training.train_prior(config("resumed", resume=True))
    assert resumed.info["steps"] == straight.info["steps"] == 5
    for (name, a), b in zip(straight.unet.state_dict().items(), resumed.unet.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    loaded = training.EmbeddedPrior.load(tmp_path / "resumed.safetensors")
    with torch.no_grad():
        assert torch.isfinite(
            loaded.predict_noise(torch.randn(1, 3, 8, 8), torch.tensor([500]), loaded.text_condition(["a red cube"]))
        ).all()


def test_prior_training_script_resume_without_a_checkpoint_is_a_one_line_error(tmp_path):
    script = Path(__file__).parents[1] / "scripts" / "train_langfield_prior.py"
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--resume",
            "--checkpoint",
            str(tmp_path / "none.pt"),
            "--output",
            str(tmp_path / "p.safetensors"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_clean_error(result, "checkpoint not found")
