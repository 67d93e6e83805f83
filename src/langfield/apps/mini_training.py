"""Training of ``langfield-mini`` (locked text, contrastive image tower) on procedural-world images.

Data: single-object images (seed ``object_seed``), crops of multi-object scenes labelled with their dominant
object (seed ``crop_seed``) and crops with no object (table top, background; seed ``background_seed``), rendered
once and cached as uint8 tensors. The evaluation seeds of
:mod:`langfield.apps.zeroshot` are never used here.

Objective: a batch of images, each paired with one caption drawn from its *training* captions (all training
synonyms, sentence frames, materials and sizes). A caption is a positive for every image of the batch whose
attributes it describes ("a red cube" fits every red cube, "a small glossy red cube" only those), so the loss is
CLIP's symmetric cross-entropy with soft multi-positive targets. Object-less crops match no caption: they only
appear as negatives of every caption, so the background never answers a query for an object. The MiniLM features
of all training captions are computed once; only the projections, the image tower and the temperature learn.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from langfield.encoders.mini import MiniArchitecture, MiniClip
from langfield.encoders.vision import VisionClip
from langfield.tensorfile import load_cache, save_cache
from langfield.train.loop import LoopSettings, Task, TrainingLoop
from langfield.ui import console
from langfield.world.vocabulary import COLORS, KINDS, MATERIALS, SIZES, Attributes, captions

COMBOS = [Attributes(k, c, m, s) for c, k, m, s in itertools.product(COLORS, KINDS, MATERIALS, SIZES)]
COMBO_INDEX = {a: i for i, a in enumerate(COMBOS)}


@dataclass
class MiniTrainConfig:
    output: Path = Path("src/langfield/encoders/weights/langfield-mini.safetensors")
    """Where the trained weights go (the default is the file shipped in the package)."""
    cache: Path = Path(".cache/langfield-mini-data")
    """Rendered training images are cached here (uint8), keyed by seed, count and resolution."""
    checkpoint: Path = Path(".cache/langfield-mini-train.pt")
    """Training state for --resume (written atomically every --checkpoint-seconds, at the end and on Ctrl-C)."""
    checkpoint_seconds: float = 180.0
    resume: bool = False
    objects: int = 40000
    crops: int = 4000
    object_seed: int = 1
    crop_seed: int = 2
    backgrounds: int = 3000
    """Crops of scenes without objects (table top, background): negatives only, so that no caption matches them."""
    background_seed: int = 3
    resolution: int = 64
    steps: int = 2000
    batch: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    embed_dim: int = 256
    widths: tuple[int, ...] = (32, 64, 128, 256)
    caption_limit: int = 1000
    """Training wordings per attribute combination (1000: all 4,800 distinct captions; fewer for quick trials)."""
    seed: int = 0
    threads: int = 0
    """torch threads (0: leave torch's default)."""
    progress: bool = True


def render_data(
    kind: str, seed: int, count: int, resolution: int, cache: Path, progress: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """(count, R, R, 3) uint8 images and (count,) attribute-combination indices (-1: no object), rendered once
    and cached."""
    from langfield.ui import task_bar
    from langfield.world.images import background_crops, crop_images, object_images

    file = Path(cache) / f"{kind}-seed{seed}-n{count}-r{resolution}.pt"
    data = load_cache(file)
    if data is not None:
        return data["images"], data["labels"]
    stream = {"object": object_images, "crop": crop_images, "background": background_crops}[kind]
    images = torch.empty(count, resolution, resolution, 3, dtype=torch.uint8)
    labels = torch.empty(count, dtype=torch.long)
    with task_bar(f"rendering {count} {kind} images", count, progress) as advance:
        for item in stream(seed, count, resolution):
            images[item.index] = (item.image.clamp(0, 1) * 255 + 0.5).to(torch.uint8)
            labels[item.index] = COMBO_INDEX[item.attributes] if item.attributes is not None else -1
            advance()
    save_cache(file, {"images": images, "labels": labels})
    return images, labels


def caption_table(limit: int = 1000) -> tuple[list[str], torch.Tensor]:
    """Every distinct training caption (at most ``limit`` wordings per attribute combination; 1000: all of them)
    and the (combos, captions) positive mask."""
    texts: dict[str, int] = {}
    pairs = []
    for j, attributes in enumerate(COMBOS):
        for text in captions(attributes, "train", limit=limit):
            pairs.append((j, texts.setdefault(text, len(texts))))
    mask = torch.zeros(len(COMBOS), len(texts), dtype=torch.bool)
    for j, t in pairs:
        mask[j, t] = True
    return list(texts), mask


def caption_features(model: MiniClip | VisionClip, texts: list[str], cache: Path) -> torch.Tensor:
    """The locked text tower's features of ``texts`` (N, D), computed once and cached beside the rendered images
    (keyed by the captions and the text tower's weights: a re-run, or a resumed run, skips the 4,800 sentences)."""
    digest = hashlib.sha256("\n".join(texts).encode())
    for name, tensor in sorted(model.text_tower.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().sum().numpy().tobytes())
    file = Path(cache) / f"caption-features-{digest.hexdigest()[:16]}.pt"
    data = load_cache(file)
    if data is not None and data["features"].shape[0] == len(texts):
        return data["features"]
    features = torch.cat([model.text_features(texts[i : i + 512]) for i in range(0, len(texts), 512)])
    save_cache(file, {"features": features})
    return features


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """uint8 (N, R, R, 3) -> float (N, R, R, 3): random zoom in [0.75, 1], shift and horizontal flip (no colour
    changes: colour is a label)."""
    n = images.shape[0]
    x = images.permute(0, 3, 1, 2).float() / 255.0
    scale = torch.empty(n).uniform_(0.75, 1.0, generator=generator)
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (1 - scale)[:, None]
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale * flip
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False).permute(0, 2, 3, 1)


def contrastive_loss(
    image: torch.Tensor, text: torch.Tensor, positive: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric cross-entropy with soft targets spread over all positives; ``image``/``text`` unit vectors. Images
    without a positive caption count only as negatives (in the text-to-image direction)."""
    logits = scale * image @ text.T
    target = positive.float()
    has = target.sum(1) > 0
    image_to_text = -(F.log_softmax(logits[has], 1) * target[has] / target[has].sum(1, keepdim=True)).sum(1).mean()
    text_to_image = -(F.log_softmax(logits.T, 1) * target.T / target.T.sum(1, keepdim=True)).sum(1).mean()
    return 0.5 * (image_to_text + text_to_image)


def caption_batch(
    combos: torch.Tensor, positive: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One training caption drawn for each image that shows an object (``combos`` >= 0), and the (images, captions)
    mask of every caption that fits each image: object-less images match none."""
    real = combos >= 0
    caption = torch.multinomial(positive[combos[real]].float(), 1, generator=generator).squeeze(1)
    matches = torch.zeros(len(combos), len(caption), dtype=torch.bool)
    matches[real] = positive[combos[real]][:, caption]
    return caption, matches


class CaptionTask(Task):
    """What the embedded encoders' training tasks share: AdamW with warm-up and cosine decay over ``config.steps``,
    the loss history, resume state and progress lines. A subclass gives the trained parameters, ``weights`` and
    ``losses``."""

    report_every = 200

    def __init__(self, model, config, parameters: list[torch.nn.Parameter]):
        self.model, self.config = model, config
        self.optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
        warmup = max(1, config.steps // 20)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / config.steps))),
        )
        self.history: list[float] = []

    def weights(self) -> dict[str, torch.Tensor]:
        """The trained tensors, at full precision (the frozen towers are not saved)."""
        raise NotImplementedError

    def state(self) -> dict:
        return {
            "model": self.weights(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "losses": self.history,
        }

    def load_state(self, payload: dict) -> None:
        self.model.load_state_dict({**self.model.state_dict(), **payload["model"]})
        self.optimizer.load_state_dict(payload["optimizer"])
        self.schedule.load_state_dict(payload["schedule"])
        self.history = list(payload["losses"])

    def after_update(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        self.schedule.step()
        return {}

    def end_step(self, step: int, elapsed: float, losses: dict[str, torch.Tensor] | None) -> float:
        if losses is not None:
            self.history.append(losses["total"].item())
        recent = self.history[-50:]
        mean = sum(recent) / len(recent) if recent else float("nan")
        if step % self.report_every == 1 or step == self.config.steps:
            parts = ", ".join(f"{k} {v.item():.3f}" for k, v in (losses or {}).items() if k != "total")
            detail = f" ({parts})" if parts else ""
            console.print(f"step {step}: loss {mean:.3f}{detail}, scale {self.model.logit_scale():.1f}")
        return mean

    def interrupted(self, step: int, saved: bool) -> None:
        if saved:
            console.print(
                f"interrupted at step {step}: state saved to {self.config.checkpoint} (continue with --resume)"
            )


class MiniTask(CaptionTask):
    """The image tower and projections of langfield-mini, on the rendered images and the fixed caption features."""

    def __init__(
        self,
        model: MiniClip,
        config: MiniTrainConfig,
        images: torch.Tensor,
        labels: torch.Tensor,
        text_features: torch.Tensor,
        positive: torch.Tensor,
    ):
        parameters = [p for n, p in model.named_parameters() if not n.startswith("text_tower.")]
        super().__init__(model, config, parameters)
        self.images, self.labels, self.text_features, self.positive = images, labels, text_features, positive

    def weights(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.model.state_dict().items() if not k.startswith("text_tower.")}

    def start(self) -> None:
        self.model.train()
        self.model.text_tower.eval()

    def losses(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        config, model = self.config, self.model
        index = torch.randint(len(self.images), (config.batch,), generator=generator)
        caption, matches = caption_batch(self.labels[index], self.positive, generator)
        image = model.encode_image(augment(self.images[index], generator))
        text = F.normalize(model.text_projection(self.text_features[caption]), dim=-1)
        loss = contrastive_loss(image, text, matches, model.log_scale.exp().clamp(max=100.0))
        return {"total": loss}


def train_mini(config: MiniTrainConfig) -> MiniClip:
    loop = TrainingLoop(
        LoopSettings(
            MiniClip.name,
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
    object_images, object_labels = render_data(
        "object", config.object_seed, config.objects, config.resolution, config.cache, config.progress
    )
    empty = (
        torch.empty(0, config.resolution, config.resolution, 3, dtype=torch.uint8),
        torch.empty(0, dtype=torch.long),
    )
    crop_images, crop_labels = (
        render_data("crop", config.crop_seed, config.crops, config.resolution, config.cache, config.progress)
        if config.crops
        else empty
    )
    background_images, background_labels = (
        render_data(
            "background", config.background_seed, config.backgrounds, config.resolution, config.cache, config.progress
        )
        if config.backgrounds
        else empty
    )
    images = torch.cat([object_images, crop_images, background_images])
    labels = torch.cat([object_labels, crop_labels, background_labels])
    data_seconds = time.time() - started

    model = MiniClip(MiniArchitecture(config.embed_dim, config.resolution, tuple(config.widths)))
    texts, positive = caption_table(config.caption_limit)
    text_features = caption_features(model, texts, config.cache)
    task = MiniTask(model, config, images, labels, text_features, positive)
    result = loop.run(task, state)
    model.eval()
    recent = task.history[-50:]
    model.info = {
        "object_images": config.objects,
        "crop_images": config.crops,
        "background_crops": config.backgrounds,
        "object_seed": config.object_seed,
        "crop_seed": config.crop_seed,
        "background_seed": config.background_seed,
        "resolution": config.resolution,
        "steps": config.steps,
        "batch": config.batch,
        "captions": len(texts),
        "data_seconds": round(data_seconds, 1),  # rendering, or reading the cache
        "train_seconds": round(result.elapsed, 1),
        "final_loss": round(sum(recent) / max(len(recent), 1), 4),
        "skipped_steps": result.skipped_steps,
        "threads": torch.get_num_threads(),
    }
    model.save(config.output)
    return model
