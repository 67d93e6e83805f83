"""Zero-shot evaluation of an encoder on the procedural world (held-out seeds; exact labels).

- ``objects``: single-object images, classified among all colour × kind captions. ``wording="train"`` uses the
  canonical caption ``"a {colour} {kind}"``; ``wording="eval"`` uses only evaluation synonyms and sentence frames
  (never seen in training), each class being the mean embedding of its evaluation frames (prompt ensembling, as
  CLIP does). Reports top-1 on colour × kind and the colour and kind of the same prediction.
- ``crops``: crops of multi-object scenes, classified among the captions of that scene's objects; success when the
  prediction is the dominant object.
"""

from __future__ import annotations

import itertools

import torch
from torch.nn import functional as F

from langfield.encoders.base import Encoder
from langfield.world.vocabulary import COLORS, EVAL_TEMPLATES, KINDS, class_caption

# Seeds of the held-out evaluation streams; training (langfield.apps.mini_training) never uses them.
EVAL_OBJECT_SEED = 1001
EVAL_CROP_SEED = 1002

CLASSES = list(itertools.product(COLORS, KINDS))


def _attributes(items) -> list:
    """The attributes of each image (every evaluation image shows an object)."""
    out = []
    for item in items:
        assert item.attributes is not None
        out.append(item.attributes)
    return out


def class_prompts(colour: str, kind: str, wording: str) -> list[str]:
    if wording == "train":
        return [class_caption(colour, kind)]
    colour_word, kind_word = COLORS[colour][2][0], KINDS[kind][1][0]
    return [
        " ".join(t.format(colour=colour_word, kind=kind_word, material="", size="").split()) for t in EVAL_TEMPLATES
    ]


def class_embeddings(encoder: Encoder, classes: list[tuple[str, str]], wording: str) -> torch.Tensor:
    """(len(classes), D): one unit vector per class (mean of its prompts' embeddings, renormalised)."""
    rows = [encoder.encode_text(class_prompts(c, k, wording)).mean(0) for c, k in classes]
    return F.normalize(torch.stack(rows), dim=-1)


def _encode(encoder: Encoder, images: list[torch.Tensor], batch: int = 256) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat(
            [encoder.encode_image(torch.stack(images[i : i + batch])) for i in range(0, len(images), batch)]
        )


def evaluate_objects(
    encoder: Encoder, count: int = 1000, seed: int = EVAL_OBJECT_SEED, resolution: int = 64, wording: str = "train"
) -> dict:
    from langfield.world.images import object_images

    items = list(object_images(seed, count, resolution))
    features = _encode(encoder, [item.image for item in items])
    predicted = (features @ class_embeddings(encoder, CLASSES, wording).T).argmax(1).tolist()
    truth = [(a.color, a.kind) for a in _attributes(items)]
    guesses = [CLASSES[p] for p in predicted]
    return {
        "images": count,
        "seed": seed,
        "wording": wording,
        "top1": sum(g == t for g, t in zip(guesses, truth)) / count,
        "colour": sum(g[0] == t[0] for g, t in zip(guesses, truth)) / count,
        "kind": sum(g[1] == t[1] for g, t in zip(guesses, truth)) / count,
    }


def evaluate_crops(
    encoder: Encoder, count: int = 300, seed: int = EVAL_CROP_SEED, resolution: int = 64, wording: str = "train"
) -> dict:
    from langfield.world.images import crop_images

    items = list(crop_images(seed, count, resolution))
    features = _encode(encoder, [item.image for item in items])
    correct = 0
    candidates_total = 0
    for item, feature in zip(items, features):
        classes = list(dict.fromkeys((a.color, a.kind) for a in item.scene_objects))
        scores = class_embeddings(encoder, classes, wording) @ feature
        (truth,) = _attributes([item])
        correct += classes[int(scores.argmax())] == (truth.color, truth.kind)
        candidates_total += len(classes)
    return {
        "images": count,
        "seed": seed,
        "wording": wording,
        "top1": correct / count,
        "mean_candidates": candidates_total / count,
    }
