"""``langfield clip classify|eval``: zero-shot classification with any encoder, and its benchmark."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional, Tuple

import tyro

from langfield.atomic import write_json
from langfield.checks import NON_NEGATIVE, at_least
from langfield.cli.parsing import parse
from langfield.errors import LangfieldError


@dataclass
class ClassifyArgs:
    """Print each image's probabilities over the labels (zero-shot, softmax of scaled cosine similarities)."""

    images: tyro.conf.Positional[Tuple[Path, ...]]
    """Image files (PNG, JPEG, ...)."""
    labels: str = ""
    """Candidate labels separated by ';', e.g. "a red cube;a blue sphere" (none with an efficientnet-liteN encoder:
    it names the image's top ImageNet classes)."""
    encoder: str = "langfield-mini"
    """langfield-mini, langfield-vision, efficientnet-lite0/1/2, a .safetensors file, or a Hugging Face CLIP folder /
    hub id."""
    top: Annotated[int, at_least(1)] = 5
    """ImageNet classes shown per image by an efficientnet-liteN encoder."""
    json: bool = False
    """Print one JSON object per image (file, labels, probabilities) instead of a table."""
    device: str = "auto"


@dataclass
class EvalArgs:
    """Zero-shot accuracy on held-out procedural images (colour x kind), both wordings, and on scene crops."""

    encoder: str = "langfield-mini"
    """A vision-language encoder: langfield-mini, langfield-vision, a .safetensors file, a CLIP folder."""
    objects: Annotated[int, at_least(1)] = 1000
    crops: Annotated[int, NON_NEGATIVE] = 300
    out: Optional[Path] = None
    """Also write the results to this JSON file."""
    device: str = "auto"


MAX_SIDE = 1024  # photos are read at most this large (an encoder looks at 64-260 pixels)


def parse_labels(text: str) -> list[str]:
    labels = [label.strip() for label in text.split(";")]
    if not any(labels):
        raise LangfieldError("--labels is empty or missing: give labels separated by ';'")
    if not all(labels):
        raise LangfieldError(f"--labels has an empty label: {text!r}")
    if len(set(labels)) != len(labels):
        raise LangfieldError(f"--labels has duplicates: {text!r}")
    return labels


def classify(args: ClassifyArgs) -> None:
    import torch

    from langfield.core import resolve_device
    from langfield.encoders import load_encoder
    from langfield.export.images import read_image
    from langfield.ui import console, styled

    if not args.images:
        raise LangfieldError("give at least one image file")
    image_only = args.encoder.strip().startswith("efficientnet-")
    if image_only and args.labels:
        raise LangfieldError(
            f"--encoder {args.encoder} has no text tower: it names ImageNet classes; drop --labels "
            "or use a vision-language encoder (langfield-vision)"
        )
    labels = [] if image_only else parse_labels(args.labels)
    images = [read_image(path, max_side=MAX_SIDE) for path in args.images]  # photos of any size
    encoder = load_encoder(args.encoder, resolve_device(args.device))
    if image_only:
        from langfield.encoders.efficientnet import EfficientNetEncoder

        assert isinstance(encoder, EfficientNetEncoder)
        for path, image in zip(args.images, images):
            best = encoder.top_classes(image.to(encoder.device), args.top)[0]
            if args.json:
                print(json.dumps({"file": str(path), "imagenet": [[name, round(p, 6)] for name, p in best]}))
            else:
                console.print(f"{path}: " + ", ".join(f"{name} {p:.3f}" for name, p in best))
        return
    rows = []
    with torch.no_grad():
        for image in images:
            rows.append(encoder.classify(image.to(encoder.device), labels)[0].tolist())
    if args.json:
        for path, probabilities in zip(args.images, rows):
            print(
                json.dumps({"file": str(path), "labels": labels, "probabilities": [round(p, 6) for p in probabilities]})
            )
        return
    from rich.table import Table

    table = Table(title=f"zero-shot probabilities ({encoder.name})")
    table.add_column("image", overflow="fold")
    for label in labels:
        table.add_column(label, justify="right")
    for path, probabilities in zip(args.images, rows):
        best = max(range(len(labels)), key=probabilities.__getitem__)
        table.add_row(
            str(path), *[styled((f"{p:.3f}", "bold")) if i == best else f"{p:.3f}" for i, p in enumerate(probabilities)]
        )
    console.print(table)


def evaluate(args: EvalArgs) -> None:
    import time

    from langfield.apps.zeroshot import evaluate_crops, evaluate_objects
    from langfield.core import resolve_device
    from langfield.encoders import load_encoder
    from langfield.ui import console

    encoder = load_encoder(args.encoder, resolve_device(args.device))
    started = time.time()
    results = {
        "encoder": encoder.name,
        "objects_train_wording": evaluate_objects(encoder, args.objects, wording="train"),
    }
    results["objects_eval_wording"] = evaluate_objects(encoder, args.objects, wording="eval")
    if args.crops:
        results["crops"] = evaluate_crops(encoder, args.crops)
    results["seconds"] = round(time.time() - started, 1)
    for key in ("objects_train_wording", "objects_eval_wording"):
        r = results[key]
        console.print(
            f"{key}: top-1 {100 * r['top1']:.1f} %  colour {100 * r['colour']:.1f} %  kind {100 * r['kind']:.1f} %  "
            f"({r['images']} images)"
        )
    if args.crops:
        r = results["crops"]
        console.print(
            f"crops: dominant object {100 * r['top1']:.1f} % among {r['mean_candidates']:.1f} candidates "
            f"({r['images']} crops)"
        )
    if args.out:
        write_json(args.out, results)


def clip(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(
            "usage: langfield clip classify|eval [OPTIONS]\n\n  classify  zero-shot label probabilities of images\n  "
            "eval      zero-shot accuracy on held-out procedural images"
        )
        return
    sub, rest = argv[0], argv[1:]
    if sub == "classify":
        classify(parse(ClassifyArgs, rest, "langfield clip classify"))
    elif sub == "eval":
        evaluate(parse(EvalArgs, rest, "langfield clip eval"))
    else:
        raise LangfieldError(f"unknown clip command '{sub}' (classify or eval)")
