"""Training a radiance field: the run folder, the dataset's random ray batches, Adam with an exponential schedule,
periodic evaluation on a held-out view, the training log and summary. The steps themselves run in the one training
loop (:mod:`langfield.train.loop`); the method's model contributes its losses through the hooks of
:class:`~langfield.core.Model`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, TextIO

import torch

from langfield.atomic import fresh_folder, remove_stale_temporaries, write_json, write_text
from langfield.checks import validate
from langfield.configio import to_dict
from langfield.core import MethodSpec, Model, RayBatch, SceneInfo, resolve_device
from langfield.core.model import load_weights
from langfield.core.runfiles import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    LOG_FILE,
    RUN_FILES,
    RUN_MARKER,
    SUMMARY_FILE,
    config_from_saved,
    read_run_file,
)
from langfield.data import load_dataset
from langfield.errors import LangfieldError
from langfield.resources import reuse_freed_memory
from langfield.train.checkpoint import load_checkpoint
from langfield.train.distributed import BUFFER_SYNC_EVERY, ProcessGroup, join_from_environment, state_digest
from langfield.train.loop import LoopResult, LoopSettings, Observer, Task, TrainingLoop, all_finite
from langfield.train.metrics import psnr
from langfield.train.optim import RowAdam
from langfield.ui import console


class RayBatches:
    """Random pixels of the training views, as rays and target colours, drawn from a seeded generator."""

    def __init__(self, dataset, device: torch.device, generator: torch.Generator):
        self.indices = torch.tensor(dataset.train_indices, dtype=torch.long)
        self.images = dataset.images[self.indices].to(device)  # (N, H, W, 4) premultiplied
        self.cameras = dataset.cameras[self.indices].to(device)
        self.background = dataset.background.to(device)
        self.pixels = dataset.width * dataset.height
        self.generator = generator
        self.device = device

    def sample(self, count: int, random_background: bool) -> RayBatch:
        cams = torch.randint(len(self.indices), (count,), generator=self.generator).to(self.device)
        pixels = torch.randint(self.pixels, (count,), generator=self.generator).to(self.device)
        origins, directions = self.cameras.pixel_rays(cams, pixels)
        rgba = self.images.view(len(self.indices), self.pixels, 4)[cams, pixels].float()
        if random_background:
            background = torch.rand((count, 3), generator=self.generator).to(self.device)
        else:
            background = self.background.expand(count, 3)
        target = rgba[:, :3] + (1.0 - rgba[:, 3:]) * background
        return RayBatch(origins, directions, target, background, cams, pixels)


def eval_subset(pixels: int, cap: int) -> torch.Tensor | None:
    """The flat pixel indices the periodic evaluation renders: ``cap`` of ``pixels`` drawn without replacement by a
    fixed generator, sorted (the same ones every time and every run), or None for all of them."""
    if cap <= 0 or pixels <= cap:
        return None
    generator = torch.Generator().manual_seed(0)
    return torch.randperm(pixels, generator=generator)[:cap].sort().values


def build_optimizer(model: Model, previous: torch.optim.Optimizer | None = None) -> torch.optim.Optimizer:
    groups = model.param_groups()
    for group in groups:
        group["initial_lr"] = group["lr"]
    fused = all(p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
    optimizer = RowAdam(groups, betas=(0.9, 0.99), eps=1e-15, fused=fused)
    if previous is not None:  # keep the moments of parameters that survived (e.g. the MLP after grid growth)
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p in previous.state:
                    optimizer.state[p] = previous.state[p]
    return optimizer


def truncate_log(path: Path, step: int) -> None:
    """Keep the lines of a JSON-lines training log up to ``step`` (the checkpoint a run resumes from): steps after
    it are trained again, and a line torn by a kill is dropped."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("step"), int) and entry["step"] <= step:
            kept.append(line)
    write_text(path, "".join(f"{line}\n" for line in kept))


class FieldTask(Task):
    """One method's model trained on ray batches of a dataset and / or on its own step losses."""

    def __init__(
        self,
        trainer: "Trainer",
        model: Model,
        dataset,
        generator: torch.Generator,
        device: torch.device,
        group: ProcessGroup | None = None,
    ):
        self.trainer, self.model, self.dataset, self.device = trainer, model, dataset, device
        self.tcfg = trainer.tcfg
        self.group = group
        self.main = group is None or group.main
        #: this rank's rays of each step (all of ``batch_rays`` alone)
        self.rays = group.share(self.tcfg.batch_rays) if group is not None else self.tcfg.batch_rays
        if group is not None:
            if self.rays == 0:
                raise LangfieldError(
                    f"--batch-rays {self.tcfg.batch_rays} is fewer than the {group.world} ranks: give each rank rays"
                )
            self.share = self.rays / self.tcfg.batch_rays
        self.optimizer = build_optimizer(model)
        critic_groups = model.critic_param_groups()
        # GAN practice: no first-moment momentum for the adversary
        self.critic_optimizer = torch.optim.Adam(critic_groups, betas=(0.0, 0.99)) if critic_groups else None
        self.generator = generator
        self.batches: RayBatches | None = None
        self.eval_view: int | None = None
        self.eval_subset: torch.Tensor | None = None
        self.log: TextIO | None = None
        self.outputs: dict | None = None
        self.last_psnr = self.last_loss = float("nan")
        self.samples_total = 0
        self.last_extra: dict[str, torch.Tensor] = {}

    # -- state -----------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            **({"critic_optimizer": self.critic_optimizer.state_dict()} if self.critic_optimizer is not None else {}),
            "scene": self.model.scene.state(),
        }

    def load_state(self, payload: dict) -> None:
        self.optimizer.load_state_dict(payload["optimizer"])
        if self.critic_optimizer is not None and "critic_optimizer" in payload:
            self.critic_optimizer.load_state_dict(payload["critic_optimizer"])

    # -- the steps -------------------------------------------------------------------------------------------
    def start(self) -> None:
        model, dataset, tcfg = self.model, self.dataset, self.tcfg
        model.prepare(dataset, progress=tcfg.progress)
        if dataset is not None and model.uses_ray_batches:
            self.batches = RayBatches(dataset, self.device, self.generator)
        if dataset is not None and tcfg.eval_every and self.main:
            self.eval_view = dataset.test_indices[0] if dataset.test_indices else dataset.train_indices[0]
            self.eval_subset = eval_subset(dataset.width * dataset.height, tcfg.eval_pixels)
        if self.main:
            self.log = (self.trainer.output / LOG_FILE).open("a", buffering=1)
        model.train()

    def begin_step(self, step: int, progress: float, generator: torch.Generator) -> None:
        if self.model.before_step(step, progress, generator):
            self.optimizer = build_optimizer(self.model, self.optimizer)
        if self.group is not None and step % BUFFER_SYNC_EVERY == 0:
            # the occupancy grid follows identical parameters with a shared generator; this keeps it so even where
            # ranks' arithmetic differs (mixed hardware)
            self.group.broadcast_tensors(list(self.model.buffers()), "the buffer broadcast")
        decay = self.tcfg.lr_final_ratio**progress
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * decay

    def losses(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        model = self.model
        self.outputs, losses = None, {}
        if self.batches is not None:
            batch = self.batches.sample(self.rays, model.random_background)
            self.outputs = model.render_batch(batch)
            losses = model.loss(self.outputs, batch)
        extra = model.step_losses(step, generator)
        if extra:
            total = losses["total"] + extra["total"] if losses else extra["total"]
            losses = {**losses, **extra, "total": total}
            self.last_extra = {k: v for k, v in extra.items() if k != "total"}
        if not losses:
            raise LangfieldError(f"method '{self.trainer.spec.name}' produced no loss at step {step}")
        return losses

    def after_update(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        if self.critic_optimizer is None:
            return {}
        critic = self.model.critic_losses(step, generator)
        self.critic_optimizer.zero_grad(set_to_none=True)
        finite = bool(torch.isfinite(critic["total"]))
        if finite:
            critic["total"].backward()
        parameters = [p for g in self.critic_optimizer.param_groups for p in g["params"]]
        if self.group is not None:  # the adversary is replicated too
            finite = self.group.reduce_gradients(parameters, 1.0 / self.group.world, finite, False).finite
        if finite and all_finite([p.grad for p in parameters]):
            self.critic_optimizer.step()
        return {f"critic_{k}": v for k, v in critic.items()}

    def skipped(self, step: int, loss: torch.Tensor) -> None:
        entry = {"step": step, "skipped": "non-finite loss or gradient", "loss": str(float(loss.detach()))}
        self._write(entry)

    def end_step(self, step: int, elapsed: float, losses: dict[str, torch.Tensor] | None) -> float:
        tcfg, outputs = self.tcfg, self.outputs
        if outputs is not None:
            self.samples_total += int(outputs["weights"].numel())
        if losses is not None:
            self.last_loss = float(losses["total"].detach())
            if "mse" in losses:
                self.last_psnr = -10 * math.log10(max(float(losses["mse"].detach()), 1e-10))
            if step % 25 == 0 or step == 1:
                entry = {"step": step, "elapsed": round(elapsed, 3)}
                if "mse" in losses:
                    entry["psnr"] = round(self.last_psnr, 3)
                # terms of `step_losses` come every few steps: the log shows their latest value
                entry.update({k: float(v.detach()) for k, v in {**self.last_extra, **losses}.items()})
                if outputs is not None:
                    entry["samples_per_ray"] = outputs["weights"].numel() / self.rays
                self._write(entry)
        if self.eval_view is not None and step % tcfg.eval_every == 0:
            self.evaluate(self.eval_view, step, elapsed)
        return self.last_psnr if self.batches is not None else self.last_loss

    def evaluate(self, view: int, step: int, elapsed: float) -> None:
        model, dataset = self.model, self.dataset
        model.select_view(dataset, view)
        subset = self.eval_subset
        if subset is None:
            image, target = model.render_camera(dataset.cameras, view, outputs=("rgb",))["rgb"], dataset.rgb(view)
        else:
            cameras = dataset.cameras.to(self.device)
            pixels = subset.to(self.device)
            origins, directions = cameras.pixel_rays(torch.full_like(pixels, view), pixels)
            image = model.render_chunked(origins, directions, outputs=("rgb",))["rgb"]
            target = dataset.rgb(view).reshape(-1, 3)[subset]
        value = psnr(image.cpu(), target)
        entry = {"step": step, "elapsed": round(elapsed, 3), "eval_view": view, "eval_psnr": value}
        if subset is not None:
            entry["eval_pixels"] = len(subset)
        self._write(entry)
        console.print(f"step {step}: held-out view {view} PSNR {value:.2f} dB")
        model.train()

    def interrupted(self, step: int, saved: bool) -> None:
        if saved:
            console.print(f"interrupted at step {step}; checkpoint saved; continue with --resume")
        else:  # a second signal cut a step in half: the last checkpoint is kept as it is
            console.print(f"stopped during step {step + 1}; the last checkpoint is kept; continue with --resume")

    def _write(self, entry: dict) -> None:
        if self.log is not None:
            self.log.write(json.dumps(entry) + "\n")

    def close(self) -> None:
        if self.log is not None:
            self.log.close()

    def summary(self, result: LoopResult) -> tuple[dict, str]:
        """The run's summary.json (every rank computes it: the samples of all ranks are summed)."""
        seconds = max(result.elapsed - result.first_elapsed, 1e-9)
        steps_here = max(result.step - result.first_step, 1)
        samples = self.samples_total if self.group is None else self.group.sum(self.samples_total)
        if self.batches is not None:
            summary = {
                "steps": result.step,
                "seconds": round(result.elapsed, 2),
                "train_psnr": round(self.last_psnr, 3),
                "samples_per_ray": round(samples / (steps_here * self.tcfg.batch_rays), 2),
                "samples_per_second": round(samples / seconds),
                "rays_per_second": round(result.rate * self.tcfg.batch_rays),
            }
            done = (
                f"train PSNR {self.last_psnr:.2f} dB, {summary['samples_per_ray']:.1f} samples per ray, "
                f"{summary['samples_per_second']:,} samples/s"
            )
        else:
            summary = {
                "steps": result.step,
                "seconds": round(result.elapsed, 2),
                "final_loss": round(self.last_loss, 5),
                "steps_per_second": round(result.rate, 3),
            }
            done = f"final loss {self.last_loss:.4g}, {result.rate:.2f} steps/s"
        summary["skipped_steps"] = result.skipped_steps
        if self.group is not None:
            # each rank's parameters and buffers, bit for bit: one digest repeated when they stayed in step
            digests = self.group.gather(state_digest(self.model))
            summary.update(ranks=self.group.world, rank_digests=digests)
            if len(set(digests)) > 1:
                console.print(f"warning: the ranks ended with different parameters (digests {digests})")
            done += f", {self.group.world} ranks"
        return summary, done


class Trainer:
    """Trains ``config`` (a method's config tree) of the method ``spec`` into ``config.output``:
    setup → steps (the training loop) → summary."""

    def __init__(self, spec: MethodSpec, config: Any, observer: Observer | None = None):
        self.group: ProcessGroup | None = None
        """The other ranks of a data-parallel training (started by torchrun), joined in :meth:`train`."""
        self.spec = spec
        self.config = config
        self.observer = observer
        """Follows the training from beside the loop (``langfield train --viewer``: the web viewer)."""
        self.output = Path(config.output)
        self.tcfg = config.trainer

    @property
    def main(self) -> bool:
        """Whether this process writes the run's files (rank 0, or training alone)."""
        return self.group is None or self.group.main

    def _prepare_output(self) -> dict | None:
        """The checkpoint to resume from (checked), or None after making the folder ready for a fresh run. Every
        rank checks; rank 0 alone writes."""
        checkpoint = self.output / CHECKPOINT_FILE
        if self.tcfg.resume:
            if self.tcfg.overwrite:
                raise LangfieldError("give --resume or --overwrite, not both")
            method, saved = read_run_file(self.output)
            if method != self.spec.name:
                raise LangfieldError(f"{self.output}: holds a '{method}' run, not '{self.spec.name}'")
            saved_config = config_from_saved(self.spec.config, saved, self.output)
            payload = load_checkpoint(checkpoint, method=self.spec.name)
            for key in ("step", "elapsed", "model", "optimizer", "scene", "rng"):
                if key not in payload:
                    raise LangfieldError(
                        f"{checkpoint}: damaged checkpoint (no '{key}'); start afresh with --overwrite"
                    )
            if self.main:
                remove_stale_temporaries(self.output)  # left by a writer that was killed
                truncate_log(self.output / LOG_FILE, int(payload["step"]))
            # the model is rebuilt exactly as saved; options of the command line apply to the loop
            self.config.model = validate(saved_config.model, "model.")
            return payload
        if checkpoint.exists() and not self.tcfg.overwrite:
            raise LangfieldError(
                f"{self.output}: already holds a run; pass --resume to continue it, --overwrite to start afresh, "
                "or choose another --output"
            )
        if self.main:
            fresh_folder(self.output, self.tcfg.overwrite, owned_marker=RUN_MARKER)
            for name in RUN_FILES:
                (self.output / name).unlink(missing_ok=True)
            (self.output / RUN_MARKER).touch()
        return None

    def _build_model(self, payload: dict | None, dataset, device: torch.device) -> Model:
        if payload:
            scene = SceneInfo.from_state(payload["scene"])
        elif dataset is not None:
            scene = SceneInfo.from_dataset(dataset)
        else:
            scene = self.spec.initial_scene(self.config.model)
        model = self.spec.build_model(self.config.model, scene).to(device)
        if payload:
            checkpoint = self.output / CHECKPOINT_FILE
            load_weights(model, payload["model"], checkpoint, self.spec.name, "start afresh with --overwrite")
            model.to(device)
        return model

    def train(self) -> Path:
        validate(self.config)  # the command line was checked when parsed; a config built in Python is checked here
        reuse_freed_memory()
        device = resolve_device(self.tcfg.device)
        self.group, device = join_from_environment(device)
        if self.group is None:
            return self._train(device)
        quiet = console.quiet
        console.quiet = not self.group.main  # rank 0 speaks for all
        clean = False
        try:
            output = self._train(device)
            clean = True
            return output
        except LangfieldError as exc:
            message = str(exc)
            raise LangfieldError(message if message.startswith("rank ") else f"rank {self.group.rank}: {message}")
        finally:
            console.quiet = quiet
            self.group.close(clean)

    def _train(self, device: torch.device) -> Path:
        tcfg, group = self.tcfg, self.group
        if group is not None and self.observer is not None and not group.main:
            self.observer = None
        payload = self._prepare_output()
        if group is not None:
            group.barrier("the start")  # the folder is ready before any rank goes on
        self.spec.prepare_config(self.config)
        # methods without a `data` option (text-to-3D) train from their own losses alone: no dataset, no ray batches
        dataset = None
        if hasattr(self.config, "data"):
            # saved absolute, so that `langfield eval RUN` works from any working directory
            self.config.data.data = Path(self.config.data.data).resolve()
            dataset = load_dataset(self.config.data)
            console.print(dataset.summary())
        settings = LoopSettings(
            self.spec.name,
            tcfg.step_limit,
            tcfg.max_seconds,
            tcfg.seed,
            tcfg.threads,
            self.output / CHECKPOINT_FILE,
            tcfg.checkpoint_every,
            tcfg.checkpoint_seconds,
            tcfg.max_bad_steps,
            tcfg.progress,
        )
        loop = TrainingLoop(settings, group)  # seeds: before the model is built
        model = self._build_model(payload, dataset, device)
        if group is not None:
            group.broadcast_module(model)  # identical already (same seed, same checkpoint); now bit for bit
        task = FieldTask(self, model, dataset, loop.rank_generator, device, group)
        if dataset is not None and model.uses_ray_batches:
            settings.metric = ("PSNR", " dB")
        if self.main:
            write_json(self.output / CONFIG_FILE, {"method": self.spec.name, "config": to_dict(self.config)})
        if payload:
            console.print(f"resuming {self.output} from step {int(payload['step'])}")
        observer = self.observer
        if observer is not None:
            observer.attach(self.output, self.spec, self.config, model, dataset)
        try:
            result = loop.run(task, payload, observer)
        finally:
            if observer is not None:
                observer.finished()
        summary, done = task.summary(result)
        if self.main:
            write_json(self.output / SUMMARY_FILE, summary)
        console.print(
            f"trained {self.spec.name} for {result.step} steps in {result.elapsed:.1f} s ({done}); run saved to "
            f"{self.output}"
        )
        return self.output
