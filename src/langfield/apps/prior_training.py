"""Training of the embedded prior ``langfield-prior`` on procedural-world renders.

Data: single-object images of the procedural world (seed ``seed``; never the evaluation seeds of
:mod:`langfield.apps.zeroshot`), the camera anywhere on the upper hemisphere (elevation 0–85°), rendered at
``2 × resolution`` and box-filtered down, cached as uint8 with each image's attributes and view. Captions: one of
the object's training captions, with the view suffix of :func:`~langfield.guidance.prompts.view_prompt` (with
probability ``view_probability``), or the empty prompt (``empty_probability``) so that classifier-free guidance
has an unconditional model. Objective: ε-prediction MSE with min-SNR-γ weighting; AdamW with warm-up and cosine
decay over the step or time budget, whichever ends first; an exponential moving average of the weights is what
gets saved. Interrupted runs resume from ``checkpoint`` (written atomically every few minutes).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from langfield.guidance.embedded import DEFAULT_SCHEDULE, DEFAULT_UNET, EmbeddedPrior
from langfield.guidance.prompts import view_name, view_prompt
from langfield.tensorfile import load_cache, save_cache
from langfield.train.loop import LoopSettings, Task, TrainingLoop
from langfield.ui import console


@dataclass
class PriorTrainConfig:
    output: Path = Path("src/langfield/guidance/weights/langfield-prior.safetensors")
    """Where the trained weights go (the default is the file shipped in the package)."""
    cache: Path = Path(".cache/langfield-prior-data")
    """Rendered training images are cached here (uint8)."""
    checkpoint: Path = Path(".cache/langfield-prior-train.pt")
    """Training state for --resume (written atomically every --checkpoint-seconds, at the end and on Ctrl-C)."""
    checkpoint_seconds: float = 180.0
    resume: bool = False
    images: int = 30000
    seed: int = 21
    resolution: int = 32
    max_elevation: float = 85.0
    steps: int = 20000
    max_seconds: float | None = 2700.0
    """Stop (with the schedule completed) after this many seconds of training; None: only steps."""
    batch: int = 32
    lr: float = 5e-4
    weight_decay: float = 1e-2
    ema: float = 0.999
    min_snr_gamma: float = 5.0
    view_probability: float = 0.85
    empty_probability: float = 0.1
    widths: tuple[int, ...] = tuple(DEFAULT_UNET["block_out_channels"])
    seed_train: int = 0
    threads: int = 0
    progress: bool = True


def render_prior_data(config: PriorTrainConfig) -> dict:
    """uint8 images (N, R, R, 3), attribute combination indices (N,) and views (N, 2), rendered once and cached."""
    from langfield.apps.mini_training import COMBO_INDEX
    from langfield.ui import task_bar
    from langfield.world.images import object_images

    res = config.resolution
    file = Path(config.cache) / f"objects-seed{config.seed}-n{config.images}-r{res}-e{config.max_elevation:g}.pt"
    cached = load_cache(file)
    if cached is not None:
        return cached
    images = torch.empty(config.images, res, res, 3, dtype=torch.uint8)
    labels = torch.empty(config.images, dtype=torch.long)
    views = torch.empty(config.images, 2)
    with task_bar(f"rendering {config.images} object images", config.images, config.progress) as advance:
        for item in object_images(config.seed, config.images, 2 * res, elevation=(0.0, config.max_elevation)):
            small = F.avg_pool2d(item.image.permute(2, 0, 1)[None], 2)[0].permute(1, 2, 0)
            images[item.index] = (small.clamp(0, 1) * 255 + 0.5).to(torch.uint8)
            assert item.attributes is not None  # object images show an object
            labels[item.index] = COMBO_INDEX[item.attributes]
            views[item.index] = torch.tensor(item.view)
            advance()
    data = {"images": images, "labels": labels, "views": views}
    save_cache(file, data)
    return data


def batch_captions(
    labels: torch.Tensor, views: torch.Tensor, config: PriorTrainConfig, generator: torch.Generator
) -> list[str]:
    from langfield.apps.mini_training import COMBOS
    from langfield.world.vocabulary import captions

    texts = []
    draws = torch.rand(len(labels), 3, generator=generator)
    for label, (azimuth, elevation), (pick, use_view, empty) in zip(labels.tolist(), views.tolist(), draws.tolist()):
        if empty < config.empty_probability:
            texts.append("")
            continue
        options = captions(COMBOS[label], "train", limit=1000)
        text = options[int(pick * len(options))]
        texts.append(view_prompt(text, view_name(azimuth, elevation)) if use_view < config.view_probability else text)
    return texts


class PriorTask(Task):
    """The UNet of the embedded prior, denoising rendered views under their captions (min-SNR-γ weighting, an EMA of
    the weights, cosine learning rate with a short warm-up)."""

    max_grad_norm = 1.0

    def __init__(self, prior: EmbeddedPrior, config: PriorTrainConfig, data: dict):
        self.prior, self.config, self.data = prior, config, data
        self.ema = copy.deepcopy(prior.unet).requires_grad_(False)
        self.optimizer = torch.optim.AdamW(prior.unet.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.images = data["images"].permute(0, 3, 1, 2).float().div(255).mul(2).sub(1)  # (N, 3, R, R) in [-1, 1]
        alphas = prior.alphas_cumprod
        snr = alphas / (1 - alphas)
        self.weight = snr.clamp(max=config.min_snr_gamma) / snr  # min-SNR-γ for ε-prediction
        self.history: list[float] = []

    def state(self) -> dict:
        return {
            "model": {"unet": self.prior.unet.state_dict(), "ema": self.ema.state_dict()},
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state(self, payload: dict) -> None:
        self.prior.unet.load_state_dict(payload["model"]["unet"])
        self.ema.load_state_dict(payload["model"]["ema"])
        self.optimizer.load_state_dict(payload["optimizer"])

    def start(self) -> None:
        self.prior.unet.train()

    def begin_step(self, step: int, progress: float, generator: torch.Generator) -> None:
        warmup, lr = 0.02, self.config.lr
        lr = lr * min(1.0, progress / warmup + 1e-3) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def losses(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        config, prior, data = self.config, self.prior, self.data
        index = torch.randint(len(self.images), (config.batch,), generator=generator)
        x0 = self.images[index]
        flip = torch.rand(config.batch, generator=generator) < 0.5  # left-right mirror: the view word stays true
        x0 = torch.where(flip.view(-1, 1, 1, 1), x0.flip(-1), x0)
        condition = prior.text_condition(batch_captions(data["labels"][index], data["views"][index], config, generator))
        t = torch.randint(prior.num_timesteps, (config.batch,), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        predicted = prior.predict_noise(prior.add_noise(x0, noise, t), t, condition)
        return {"total": (self.weight[t] * ((predicted - noise) ** 2).mean(dim=(1, 2, 3))).mean()}

    def after_update(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        decay = min(self.config.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.prior.unet.parameters()):
                e.lerp_(p, 1 - decay)
        return {}

    def end_step(self, step: int, elapsed: float, losses: dict[str, torch.Tensor] | None) -> float:
        if losses is not None:
            self.history.append(losses["total"].item())
        if step % 500 == 0:
            recent = self.history[-500:]
            console.print(f"step {step}: loss {sum(recent) / max(len(recent), 1):.4f} ({elapsed:.0f} s)")
        recent = self.history[-100:]
        return sum(recent) / len(recent) if recent else float("nan")

    def interrupted(self, step: int, saved: bool) -> None:
        if saved:
            console.print(
                f"interrupted at step {step}: state saved to {self.config.checkpoint} (continue with --resume)"
            )


def train_prior(config: PriorTrainConfig) -> EmbeddedPrior:
    loop = TrainingLoop(
        LoopSettings(
            EmbeddedPrior.name,
            config.steps,
            config.max_seconds or None,
            config.seed_train,
            config.threads or None,
            config.checkpoint,
            checkpoint_seconds=config.checkpoint_seconds,
            progress=config.progress,
            restart_hint="start without --resume",
        )
    )
    state = loop.saved_state() if config.resume else None  # fail before rendering
    started = time.time()
    data = render_prior_data(config)
    data_seconds = time.time() - started
    unet_config = {**DEFAULT_UNET, "sample_size": config.resolution, "block_out_channels": list(config.widths)}
    prior = EmbeddedPrior(unet_config, DEFAULT_SCHEDULE)
    task = PriorTask(prior, config, data)
    result = loop.run(task, state)
    prior.unet.load_state_dict(task.ema.state_dict())
    prior.unet.eval()
    recent = task.history[-200:]
    prior.info = {
        "images": config.images,
        "seed": config.seed,
        "resolution": config.resolution,
        "max_elevation": config.max_elevation,
        "steps": result.step,
        "batch": config.batch,
        "train_seconds": round(result.elapsed, 1),
        "data_seconds": round(data_seconds, 1),
        "final_loss": round(sum(recent) / max(len(recent), 1), 4),
        "skipped_steps": result.skipped_steps,
        "threads": torch.get_num_threads(),
    }
    prior.save(config.output)
    return prior
