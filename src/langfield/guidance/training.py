"""Training of the embedded prior ``langfield-prior`` on procedural-world renders.

Data: single-object images of the procedural world (seed ``seed``; never the evaluation seeds of
:mod:`langfield.encoders.zeroshot`), the camera anywhere on the upper hemisphere (elevation 0–85°), rendered at
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

from langfield.errors import LangfieldError
from langfield.guidance.embedded import DEFAULT_SCHEDULE, DEFAULT_UNET, EmbeddedPrior
from langfield.guidance.prompts import view_name, view_prompt
from langfield.tensorfile import load_cache, save_cache


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
    from langfield.encoders.training import COMBO_INDEX
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
            labels[item.index] = COMBO_INDEX[item.attributes]
            views[item.index] = torch.tensor(item.view)
            advance()
    data = {"images": images, "labels": labels, "views": views}
    save_cache(file, data)
    return data


def batch_captions(labels: torch.Tensor, views: torch.Tensor, config: PriorTrainConfig, generator: torch.Generator) -> list[str]:
    from langfield.encoders.training import COMBOS
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


def train_prior(config: PriorTrainConfig) -> EmbeddedPrior:
    from langfield.train.checkpoint import load_checkpoint, save_checkpoint
    from langfield.train.interrupt import checkpointed_steps
    from langfield.ui import progress_bar

    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed_train)
    generator = torch.Generator().manual_seed(config.seed_train)
    state = load_checkpoint(config.checkpoint, method=EmbeddedPrior.name) if config.resume else None  # fail before rendering
    started = time.time()
    data = render_prior_data(config)
    data_seconds = time.time() - started
    unet_config = {**DEFAULT_UNET, "sample_size": config.resolution, "block_out_channels": list(config.widths)}
    prior = EmbeddedPrior(unet_config, DEFAULT_SCHEDULE)
    ema = copy.deepcopy(prior.unet).requires_grad_(False)
    optimizer = torch.optim.AdamW(prior.unet.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    step, elapsed, losses = 0, 0.0, []
    if state is not None:
        prior.unet.load_state_dict(state["unet"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed = int(state["step"]), float(state["elapsed"])
        generator.set_state(state["generator"])
    images = data["images"].permute(0, 3, 1, 2).float().div(255).mul(2).sub(1)  # (N, 3, R, R) in [-1, 1]
    alphas = prior.alphas_cumprod
    snr = alphas / (1 - alphas)
    weight = snr.clamp(max=config.min_snr_gamma) / snr  # min-SNR-γ for ε-prediction

    def progress() -> float:
        done = step / config.steps
        return min(1.0, max(done, elapsed / config.max_seconds) if config.max_seconds else done)

    warmup = 0.02
    prior.unet.train()
    clock = time.time() - elapsed

    def save_state() -> None:
        save_checkpoint(config.checkpoint, {"method": EmbeddedPrior.name, "step": step, "elapsed": elapsed, "unet": prior.unet.state_dict(),
                                            "ema": ema.state_dict(), "optimizer": optimizer.state_dict(), "generator": generator.get_state()})

    def interrupted() -> None:
        bar.log(f"interrupted at step {step}: state saved to {config.checkpoint} (continue with --resume)")

    with progress_bar("langfield-prior", config.progress, metric="loss") as bar, \
            checkpointed_steps(save_state, config.checkpoint_seconds, interrupted) as steps:
        while progress() < 1.0:
            fraction = progress()
            lr = config.lr * min(1.0, fraction / warmup + 1e-3) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * fraction)))
            for group in optimizer.param_groups:
                group["lr"] = lr
            index = torch.randint(len(images), (config.batch,), generator=generator)
            x0 = images[index]
            flip = torch.rand(config.batch, generator=generator) < 0.5  # left-right mirror: the view word stays true
            x0 = torch.where(flip.view(-1, 1, 1, 1), x0.flip(-1), x0)
            condition = prior.text_condition(batch_captions(data["labels"][index], data["views"][index], config, generator))
            t = torch.randint(prior.num_timesteps, (config.batch,), generator=generator)
            noise = torch.randn(x0.shape, generator=generator)
            predicted = prior.predict_noise(prior.add_noise(x0, noise, t), t, condition)
            loss = (weight[t] * ((predicted - noise) ** 2).mean(dim=(1, 2, 3))).mean()
            if not torch.isfinite(loss):
                raise LangfieldError(f"langfield-prior: loss became {loss.item()} at step {step}; the last checkpoint is kept (lower --lr, then --resume)")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(prior.unet.parameters(), 1.0)
            optimizer.step()
            decay = min(config.ema, (1 + step) / (10 + step))
            with torch.no_grad():
                for e, p in zip(ema.parameters(), prior.unet.parameters()):
                    e.lerp_(p, 1 - decay)
            step += 1
            elapsed = time.time() - clock
            losses.append(loss.item())
            if step % 10 == 0:
                bar.update(progress(), step, sum(losses[-100:]) / len(losses[-100:]))
            if step % 500 == 0:
                bar.log(f"step {step}: loss {sum(losses[-500:]) / len(losses[-500:]):.4f} ({elapsed:.0f} s)")
            steps.step_done()
    prior.unet.load_state_dict(ema.state_dict())
    prior.unet.eval()
    prior.info = {
        "images": config.images, "seed": config.seed, "resolution": config.resolution, "max_elevation": config.max_elevation,
        "steps": step, "batch": config.batch, "train_seconds": round(elapsed, 1), "data_seconds": round(data_seconds, 1),
        "final_loss": round(sum(losses[-200:]) / max(len(losses[-200:]), 1), 4), "threads": torch.get_num_threads(),
    }
    prior.save(config.output)
    return prior
