"""Encoders: the shared interface, the embedded langfield-mini, and tiny Hugging Face CLIP / DINO models."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import assert_clean_error, interrupt_on_call, langfield
from langfield.encoders import load_encoder
from langfield.encoders.base import resize_center_crop
from langfield.encoders.mini import MiniArchitecture, MiniClip
from langfield.encoders.minilm import MiniLM, minilm_path
from langfield.errors import LangfieldError
from langfield.world.images import object_images


@pytest.fixture(scope="module")
def mini():
    return load_encoder("langfield-mini")


def render(kind: str, color: str, seed: int = 5, count: int = 1) -> torch.Tensor:
    return torch.stack([item.image for item in object_images(seed, count, 64, kinds=(kind,), colors=(color,))])


def test_minilm_matches_transformers_bert():
    transformers = pytest.importorskip("transformers")
    texts = ["a red cube", "there is a crimson block here", "the small glossy blue torus"]
    ours = MiniLM()(texts)
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_path())
    model = transformers.AutoModel.from_pretrained(minilm_path()).eval()
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    weights = batch["attention_mask"].unsqueeze(-1).float()
    reference = torch.nn.functional.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1)
    assert torch.allclose(ours, reference, atol=1e-5)


def test_shipped_weights_classify_a_red_sphere_and_a_blue_cube(mini):
    images = torch.cat([render("sphere", "red"), render("cube", "blue")])
    probabilities = mini.classify(images, ["a red sphere", "a blue cube"])
    assert probabilities.argmax(1).tolist() == [0, 1]
    assert probabilities[0, 0] > 0.9 and probabilities[1, 1] > 0.9
    assert torch.allclose(probabilities.sum(1), torch.ones(2))


def test_shipped_weights_zero_shot_on_held_out_images(mini):
    from langfield.apps.zeroshot import evaluate_objects

    result = evaluate_objects(mini, count=96, wording="train")
    assert result["top1"] >= 0.85 and result["colour"] >= 0.9 and result["kind"] >= 0.9, result


def test_shapes_normalisation_input_forms_and_determinism(mini):
    images = torch.rand(3, 48, 80, 3)
    embedded = mini.encode_image(images)
    assert embedded.shape == (3, mini.embed_dim)
    assert torch.allclose(embedded.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.equal(embedded, mini.encode_image(images))  # deterministic (eval mode, no dropout)
    single = mini.encode_image(images[0])
    assert torch.allclose(single[0], embedded[0], atol=1e-6)
    as_uint8 = mini.encode_image((images * 255).round().to(torch.uint8))
    assert (as_uint8 * embedded).sum(-1).min() > 0.99
    text = mini.encode_text(["a red cube", "a blue sphere"])
    assert text.shape == (2, mini.embed_dim) and torch.allclose(text.norm(dim=-1), torch.ones(2), atol=1e-5)
    dense = mini.dense_features(images)
    assert dense.shape[0] == 3 and dense.shape[1:3] == (mini.input_size // 8, mini.input_size // 8)


def test_resize_center_crop_keeps_the_centre():
    image = torch.zeros(1, 40, 80, 3)
    image[:, :, 20:60] = 1.0  # the central square is white, the sides black
    out = resize_center_crop(image, 20)
    assert out.shape == (1, 3, 20, 20) and out[..., 1:-1].min() > 0.99  # the antialiasing filter blurs the edge columns


def test_gradient_reaches_the_input_image(mini):
    image = render("cone", "green").requires_grad_(True)
    target = mini.encode_text(["a red cube"])
    loss = 1 - (mini.encode_image(image) * target).sum()
    loss.backward()
    assert image.grad is not None and torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0
    assert all(p.grad is None for p in mini.parameters())  # the encoder is frozen


def test_text_embeddings_are_cached(mini, monkeypatch):
    mini.encode_text(["a cached caption"])
    calls = []
    monkeypatch.setattr(mini, "_text", lambda texts: calls.append(texts) or torch.zeros(len(texts), mini.embed_dim))
    mini.encode_text(["a cached caption"])
    assert calls == []


def test_bad_inputs_give_one_line_errors(mini, tmp_path):
    for texts in ([], [""], ["  "]):
        with pytest.raises(LangfieldError):
            mini.encode_text(texts)
    for images in (torch.rand(2, 3, 32, 32), torch.rand(0, 8, 8, 3), torch.rand(8, 8)):
        with pytest.raises(LangfieldError, match="images"):
            mini.encode_image(images)
    with pytest.raises(LangfieldError, match="--encoder"):
        load_encoder("  ")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    with pytest.raises(LangfieldError, match="broken.safetensors"):
        load_encoder(str(broken))


def test_training_script_writes_loadable_weights_and_resumes_after_an_interrupt(tmp_path, monkeypatch):
    from langfield.apps import mini_training as training
    from langfield.train.checkpoint import load_checkpoint

    def config(name: str, **changes) -> training.MiniTrainConfig:
        return training.MiniTrainConfig(
            output=tmp_path / f"{name}.safetensors",
            cache=tmp_path / "cache",
            checkpoint=tmp_path / f"{name}.pt",
            objects=48,
            crops=4,
            backgrounds=4,
            steps=4,
            batch=16,
            widths=(8, 16, 16, 32),
            embed_dim=32,
            caption_limit=2,  # the loop's mechanics, not the captions, are under test here
            progress=False,
            **changes,
        )

    straight = training.train_mini(config("straight"))
    model = load_encoder(str(tmp_path / "straight.safetensors"))
    assert isinstance(model, MiniClip) and model.architecture == MiniArchitecture(32, 64, (8, 16, 16, 32))
    assert model.info["steps"] == 4 and np.isfinite(model.info["final_loss"])
    assert (tmp_path / "cache" / "object-seed1-n48-r64.pt").is_file()  # the rendered images are cached
    assert len(list((tmp_path / "cache").glob("caption-features-*.pt"))) == 1  # and the captions' features
    with monkeypatch.context() as patch:
        interrupt_on_call(patch, training, "contrastive_loss", 3)  # in the middle of the 3rd step
        with pytest.raises(KeyboardInterrupt):
            training.train_mini(config("resumed"))
    assert load_checkpoint(tmp_path / "resumed.pt", method=MiniClip.name)["step"] == 3  # the step finished, then saved
    resumed = training.train_mini(config("resumed", resume=True))
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    with pytest.raises(LangfieldError, match="checkpoint not found"):
        training.train_mini(config("other", resume=True))


def test_contrastive_loss_prefers_aligned_pairs():
    from langfield.apps.mini_training import contrastive_loss

    x = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    positive = torch.eye(8, dtype=torch.bool)
    aligned = contrastive_loss(x, x, positive, torch.tensor(10.0))
    shuffled = contrastive_loss(x, x.roll(1, 0), positive, torch.tensor(10.0))
    assert aligned < shuffled


# --- Hugging Face backends, tiny random models built in code (no download) -------------------------------------
@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("hf")
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_path())  # any local tokenizer will do
    torch.manual_seed(0)
    clip = transformers.CLIPConfig(
        text_config=dict(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=64,
            pad_token_id=0,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )
    transformers.CLIPModel(clip).save_pretrained(root / "clip")
    tokenizer.save_pretrained(root / "clip")
    (root / "clip" / "preprocessor_config.json").write_text(
        json.dumps({"crop_size": {"height": 32, "width": 32}, "image_mean": [0.5] * 3, "image_std": [0.5] * 3})
    )
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    transformers.Dinov2Model(transformers.Dinov2Config(image_size=56, patch_size=14, **small)).save_pretrained(
        root / "dinov2"
    )
    transformers.ViTModel(
        transformers.ViTConfig(image_size=32, patch_size=8, **small), add_pooling_layer=False
    ).save_pretrained(root / "dino")
    transformers.BertModel(transformers.BertConfig(vocab_size=100, **small)).save_pretrained(root / "bert")
    return root


def test_tiny_hf_clip_end_to_end(tiny_models):
    clip = load_encoder(str(tiny_models / "clip"))
    assert (clip.input_size, clip.embed_dim) == (32, 16)
    assert torch.allclose(clip.mean.flatten(), torch.full((3,), 0.5))  # read from preprocessor_config.json
    text = clip.encode_text(["a red cube", "a blue sphere", "a red cube"])
    assert text.shape == (3, 16) and torch.allclose(text[0], text[2])
    assert torch.allclose(text.norm(dim=-1), torch.ones(3), atol=1e-5)
    images = torch.rand(2, 40, 56, 3, requires_grad=True)
    embedded = clip.encode_image(images)
    assert embedded.shape == (2, 16) and torch.allclose(embedded.norm(dim=-1), torch.ones(2), atol=1e-5)
    (embedded @ text[0]).sum().backward()
    assert images.grad.abs().sum() > 0
    assert clip.dense_features(images).shape == (2, 4, 4, 16)
    probabilities = clip.classify(images.detach(), ["a red cube", "a blue sphere"])
    assert torch.allclose(probabilities.sum(1), torch.ones(2))


@pytest.mark.parametrize("name, grid", [("dinov2", 4), ("dino", 4)])
def test_tiny_hf_dino_dense_features(tiny_models, name, grid):
    dino = load_encoder(str(tiny_models / name))
    images = torch.rand(3, 64, 64, 3, requires_grad=True)
    dense = dino.dense_features(images)
    assert dense.shape == (3, grid, grid, 32)
    dense.square().mean().backward()
    assert images.grad.abs().sum() > 0
    assert dino.encode_image(images).shape == (3, 32)
    with pytest.raises(LangfieldError, match="no text tower"):
        dino.encode_text(["a red cube"])


def test_hf_loading_errors(tiny_models, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(LangfieldError, match="no such folder"):
        load_encoder(str(tiny_models / "missing"))
    with pytest.raises(LangfieldError, match="cannot load encoder 'nobody/no-such-clip'"):
        load_encoder("nobody/no-such-clip")
    with pytest.raises(LangfieldError, match="'bert' model"):
        load_encoder(str(tiny_models / "bert"))


# --- CLI -------------------------------------------------------------------------------------------------------
def test_clip_classify_cli(tmp_path):
    files = []
    for kind, color in (("sphere", "red"), ("cube", "blue")):
        files.append(tmp_path / f"{color}-{kind}.png")
        Image.fromarray((render(kind, color, seed=11)[0].numpy() * 255).astype(np.uint8)).save(files[-1])
    result = langfield("clip", "classify", *files, "--labels", "a blue cube; a red sphere", "--json")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in rows] == [str(f) for f in files]
    assert rows[0]["labels"] == ["a blue cube", "a red sphere"]
    assert [int(np.argmax(r["probabilities"])) for r in rows] == [1, 0]
    table = langfield("clip", "classify", files[0], "--labels", "a blue cube;a red sphere")
    assert table.returncode == 0 and "a red sphere" in table.stdout
    assert_clean_error(
        langfield("clip", "classify", tmp_path / "nope.png", "--labels", "a;b"), "image not found", "nope.png"
    )
    (tmp_path / "bad.png").write_text("not an image")
    assert_clean_error(langfield("clip", "classify", tmp_path / "bad.png", "--labels", "a;b"), "bad.png")
    assert_clean_error(langfield("clip", "classify", files[0], "--labels", " ; "), "--labels")
    assert_clean_error(
        langfield("clip", "classify", files[0], "--labels", "a;b", "--encoder", str(tmp_path / "nothing")),
        "no such folder",
    )


def test_dietnerf_semantic_loss_through_a_tiny_hf_clip(tiny_models, sphere_scene):
    """The method runs on the Hugging Face backend unchanged (the paper's CLIP, here a tiny random one)."""
    from langfield.core import SceneInfo
    from langfield.data import load_dataset
    from langfield.data.config import DataConfig
    from langfield.methods.dietnerf.config import DietNerfModelConfig
    from langfield.methods.dietnerf.model import DietNerfModel

    dataset = load_dataset(DataConfig(data=sphere_scene, num_views=4))
    config = DietNerfModelConfig(
        resolution=32,
        initial_resolution=24,
        grow_at=(1000,),
        occupancy_resolution=16,
        semantic_resolution=24,
        encoder=str(tiny_models / "clip"),
    )
    model = DietNerfModel(config, SceneInfo.from_dataset(dataset))
    model.prepare(dataset, progress=False)
    assert model.targets.shape == (4, 16)
    loss = model.semantic_loss(torch.Generator().manual_seed(0))
    loss.backward()
    assert float(model.field.density_grid.values.grad.abs().sum()) > 0
