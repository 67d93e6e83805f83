"""Training of ``langfield-vision``: a head on the frozen real backbone, tied to the procedural world's captions and
to the backbone's own ImageNet classifier.

Data: the procedural images of :mod:`langfield.apps.mini_training` (single objects, crops of scenes labelled with
their dominant object, object-less crops), plus 2×2 mosaics of object images (ConSE targets only). Every image passes
the frozen backbone once per view (view 0 as rendered, further views with a random zoom, shift and flip); the pooled
features and the classifier's top-10 probabilities are cached, so the training steps only run the head.

Objective, per step:

- **captions** — CLIP's symmetric cross-entropy with soft multi-positive targets between a batch of images and one
  training caption of each (the loss of langfield-mini; object-less crops are negatives only);
- **ConSE** — the ImageNet classifier's top-10 probabilities (renormalised) over the 1,000 class names, each name
  embedded by the same text tower and projection ("a photo of a {name}."), as soft targets of the image's softmax over
  those names. This is what ties the joint space to words for real objects: the image side learns where the backbone's
  classes lie among sentences, the text side learns to place the names (and the words near them in MiniLM's space)
  where the images of those classes land.

Then the out-of-distribution gate (:func:`fit_gate`): the per-dimension mean and spread of the training images'
backbone features, and a threshold at ``gate_factor`` times the ``gate_quantile`` of their own distances — chosen
from the training images alone, never from a photo — past which the image embedding hands over to ConSE.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from langfield.apps.mini_training import (
    CaptionTask,
    augment,
    caption_batch,
    caption_features,
    caption_table,
    contrastive_loss,
    render_data,
)
from langfield.encoders.efficientnet import imagenet_classes
from langfield.encoders.vision import (
    VisionArchitecture,
    VisionClip,
    class_name_prompts,
    conse_targets,
    pooled_features,
)
from langfield.tensorfile import load_cache, save_cache
from langfield.train.loop import LoopSettings, TrainingLoop
from langfield.ui import task_bar


@dataclass
class VisionTrainConfig:
    output: Path = Path("src/langfield/encoders/weights/langfield-vision.safetensors")
    """Where the trained weights go (the default is the file shipped in the package)."""
    cache: Path = Path(".cache/langfield-vision-data")
    """Rendered images and backbone features are cached here, keyed by seed, count, resolution and backbone."""
    checkpoint: Path = Path(".cache/langfield-vision-train.pt")
    """Training state for --resume."""
    checkpoint_seconds: float = 180.0
    resume: bool = False
    objects: int = 10000
    crops: int = 1500
    backgrounds: int = 800
    mosaics: int = 2000
    """2×2 mosaics of object images: ConSE targets only (several objects: no single caption)."""
    object_seed: int = 1
    crop_seed: int = 2
    background_seed: int = 3
    mosaic_seed: int = 4
    resolution: int = 64
    views: int = 2
    """Backbone passes per image (the first as rendered, the others augmented)."""
    input_size: int = 160
    embed_dim: int = 256
    hidden: int = 512
    steps: int = 3000
    batch: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-4
    conse_weight: float = 1.0
    """Weight of the ConSE (ImageNet classifier) loss beside the caption loss (0: captions only)."""
    caption_limit: int = 1000
    conse_fallback: bool = True
    """Ship the out-of-distribution gate to ConSE (langfield.encoders.vision)."""
    gate_quantile: float = 0.99
    gate_factor: float = 1.5
    """The gate is half open at gate_factor x the gate_quantile of the training images' own distances."""
    gate_only: bool = False
    """Only fit the gate: load the weights at --output (same head and projection), fit the gate on the training
    images this configuration names, and write them back with the gate."""
    seed: int = 0
    threads: int = 0
    progress: bool = True


def mosaics(images: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """(count, R, R, 3) uint8: 2×2 tiles of random ``images``, each tile the image at half size."""
    generator = torch.Generator().manual_seed(seed)
    n, r = images.shape[0], images.shape[1]
    picks = torch.randint(n, (count, 4), generator=generator)
    tiles = F.interpolate(images[picks.flatten()].permute(0, 3, 1, 2).float(), size=(r // 2, r // 2), mode="area")
    tiles = tiles.view(count, 2, 2, 3, r // 2, r // 2).permute(0, 3, 1, 4, 2, 5).reshape(count, 3, r, r)
    return tiles.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def backbone_features(
    model: VisionClip, images: torch.Tensor, views: int, seed: int, cache: Path, progress: bool = True, batch: int = 64
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(views, N, F) float16 head inputs, (views, N, 10) top-10 class indices and their renormalised probabilities of
    ``images`` (uint8), computed once and cached (keyed by the images, the views and the backbone)."""
    digest = hashlib.sha256(images.numpy().tobytes())
    digest.update(f"{views}-{seed}-{model.architecture.backbone}-{model.input_size}".encode())
    file = Path(cache) / f"features-{digest.hexdigest()[:16]}.pt"
    data = load_cache(file)
    if data is not None:
        return data["features"], data["classes"], data["weights"]
    generator = torch.Generator().manual_seed(seed)
    n = images.shape[0]
    features, classes, weights = [], [], []
    with task_bar(f"backbone features of {n} images x {views} views", n * views, progress) as advance:
        for view in range(views):
            rows, top_i, top_p = [], [], []
            for start in range(0, n, batch):
                chunk = images[start : start + batch]
                pixels = chunk.float() / 255.0 if view == 0 else augment(chunk, generator)
                with torch.no_grad():
                    maps = model.backbone(model.preprocess(pixels))
                    rows.append(pooled_features(maps).half())
                    p = conse_targets(torch.softmax(model.backbone.logits(maps["pooled"]), -1))
                    values, indices = p.topk(10, dim=-1)
                top_i.append(indices.to(torch.int16))
                top_p.append(values.half())
                advance(len(chunk))
            features.append(torch.cat(rows))
            classes.append(torch.cat(top_i))
            weights.append(torch.cat(top_p))
    data = {"features": torch.stack(features), "classes": torch.stack(classes), "weights": torch.stack(weights)}
    save_cache(file, data)
    return data["features"], data["classes"], data["weights"]


class VisionTask(CaptionTask):
    """The head, the text projection and the temperature, on cached backbone features."""

    report_every = 500

    def __init__(self, model: VisionClip, config: VisionTrainConfig, data: dict):
        parameters = [p for n, p in model.named_parameters() if not n.startswith(("text_tower.", "backbone."))]
        super().__init__(model, config, parameters)
        self.features = data["features"]  # (views, N, F), the first `captioned` rows have labels
        self.top_classes, self.top_weights = data["classes"], data["weights"]
        self.labels, self.positive = data["labels"], data["positive"]
        self.caption_features, self.name_features = data["caption_features"], data["name_features"]
        self.captioned = len(self.labels)

    def weights(self) -> dict[str, torch.Tensor]:
        return self.model.trained_state()

    def start(self) -> None:
        self.model.train()

    def _rows(self, count: int, limit: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        views = torch.randint(self.features.shape[0], (count,), generator=generator)
        return views, torch.randint(limit, (count,), generator=generator)

    def losses(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        config, model = self.config, self.model
        scale = model.log_scale.exp().clamp(max=100.0)
        # captions
        views, index = self._rows(config.batch, self.captioned, generator)
        caption, matches = caption_batch(self.labels[index], self.positive, generator)
        image = F.normalize(model.head(self.features[views, index].float()), dim=-1)
        text = F.normalize(model.text_projection(self.caption_features[caption]), dim=-1)
        losses = {"captions": contrastive_loss(image, text, matches, scale)}
        # ConSE: the classifier's soft targets over the class names
        if config.conse_weight > 0:
            views, index = self._rows(config.batch, self.features.shape[1], generator)
            image = F.normalize(model.head(self.features[views, index].float()), dim=-1)
            names = F.normalize(model.text_projection(self.name_features), dim=-1)
            target = torch.zeros(len(index), names.shape[0])
            target.scatter_(1, self.top_classes[views, index].long(), self.top_weights[views, index].float())
            log_p = F.log_softmax(scale * image @ names.T, dim=-1)
            losses["conse"] = -(target * log_p).sum(1).mean()
        losses["total"] = losses["captions"] + config.conse_weight * losses.get("conse", torch.zeros(()))
        return losses


def fit_gate(
    model: VisionClip, features: torch.Tensor, name_features: torch.Tensor, quantile: float, factor: float
) -> dict:
    """Set ``model``'s gate from the (views, N, F) training features and its class-name embeddings from the raw
    (1000, 384) MiniLM features; returns the figures that describe it."""
    rows = features.reshape(-1, features.shape[-1]).float()
    mean = rows.mean(0)
    inv_std = 1.0 / (rows.std(0) + 1e-3 * rows.std(0).mean())
    model.gate_mean.copy_(mean)
    model.gate_inv_std.copy_(inv_std)
    distances = model.distance(rows)
    reference = float(torch.quantile(distances[torch.randperm(len(distances))[:100_000]], quantile))
    model.gate_threshold.fill_(factor * reference)
    model.gate_width.fill_(0.1 * factor * reference)
    model.name_embeddings.copy_(F.normalize(name_features.float(), dim=-1))
    return {
        "gate_images": int(rows.shape[0]),
        "gate_quantile": quantile,
        "gate_reference_distance": round(reference, 3),
        "gate_threshold": round(factor * reference, 3),
        "gate_share_on_training_images": round(float(model.gate(rows).mean()), 5),
    }


def train_vision(config: VisionTrainConfig) -> VisionClip:
    loop = TrainingLoop(
        LoopSettings(
            VisionClip.name,
            config.steps,
            seed=config.seed,
            threads=config.threads or None,
            checkpoint=config.checkpoint,
            checkpoint_seconds=config.checkpoint_seconds,
            progress=config.progress,
            restart_hint="start without --resume",
        )
    )
    state = loop.saved_state() if config.resume else None  # fail before rendering
    started = time.time()
    parts = [
        render_data(kind, seed, count, config.resolution, config.cache, config.progress)
        for kind, seed, count in (
            ("object", config.object_seed, config.objects),
            ("crop", config.crop_seed, config.crops),
            ("background", config.background_seed, config.backgrounds),
        )
        if count
    ]
    images = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts])
    if config.mosaics:
        objects = parts[0][0] if config.objects else images
        images = torch.cat([images, mosaics(objects, config.mosaics, config.mosaic_seed)])
    data_seconds = time.time() - started

    architecture = VisionArchitecture(
        input_size=config.input_size,
        embed_dim=config.embed_dim,
        hidden=config.hidden,
        conse_fallback=config.conse_fallback or config.gate_only,
    )
    model = VisionClip(architecture)
    if config.gate_only:
        trained = VisionClip.load(config.output)
        state = {k: v for k, v in trained.trained_state().items() if not k.startswith(("gate_", "name_"))}
        model.load_state_dict(state, strict=False)
        model.info = dict(trained.info)
    started = time.time()
    features, classes, weights = backbone_features(
        model, images, config.views, config.seed, config.cache, config.progress
    )
    feature_seconds = time.time() - started
    texts, positive = caption_table(config.caption_limit)
    names = class_name_prompts(imagenet_classes())
    data = {
        "features": features,
        "classes": classes,
        "weights": weights,
        "labels": labels,
        "positive": positive,
        "caption_features": caption_features(model, texts, config.cache),
        "name_features": caption_features(model, names, config.cache),
    }
    if not config.gate_only:  # else the head, projection and temperature loaded above stay as they are
        task = VisionTask(model, config, data)
        result = loop.run(task, state)
        model.eval()
        recent = task.history[-50:]
        model.info = {
            "object_images": config.objects,
            "crop_images": config.crops,
            "background_crops": config.backgrounds,
            "mosaics": config.mosaics,
            "views": config.views,
            "resolution": config.resolution,
            "input_size": config.input_size,
            "steps": config.steps,
            "batch": config.batch,
            "conse_weight": config.conse_weight,
            "captions": len(texts),
            "data_seconds": round(data_seconds, 1),
            "feature_seconds": round(feature_seconds, 1),
            "train_seconds": round(result.elapsed, 1),
            "final_loss": round(sum(recent) / max(len(recent), 1), 4),
            "skipped_steps": result.skipped_steps,
            "threads": torch.get_num_threads(),
        }
    if architecture.conse_fallback:
        with torch.no_grad():
            model.info.update(
                fit_gate(model, features, data["name_features"], config.gate_quantile, config.gate_factor)
            )
        model.info["gate_fitted_on"] = f"{config.objects} objects, {config.crops} crops, {config.backgrounds} "
        model.info["gate_fitted_on"] += f"object-less crops, {config.mosaics} mosaics, {config.views} views"
    model.save(config.output)
    return model.eval()
