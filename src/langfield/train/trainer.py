"""The training loop shared by every method: random ray batches, Adam with an exponential schedule, progress,
periodic evaluation, atomic checkpoints, resume, and stopping on steps or seconds."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from langfield.atomic import fresh_folder, remove_stale_temporaries, write_json, write_text
from langfield.checks import validate
from langfield.configio import to_dict
from langfield.data import load_dataset
from langfield.errors import LangfieldError
from langfield.methods.base import Model, RayBatch, SceneInfo
from langfield.methods.registry import get_method
from langfield.run import CHECKPOINT_FILE, CONFIG_FILE, read_run_config, resolve_device
from langfield.train.checkpoint import load_checkpoint, save_checkpoint
from langfield.train.interrupt import saves_on, step_boundaries
from langfield.train.metrics import psnr
from langfield.ui import console, progress_bar


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


def build_optimizer(model: Model, previous: torch.optim.Optimizer | None = None) -> torch.optim.Optimizer:
    groups = model.param_groups()
    for group in groups:
        group["initial_lr"] = group["lr"]
    fused = all(p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
    optimizer = torch.optim.Adam(groups, betas=(0.9, 0.99), eps=1e-15, fused=fused)
    if previous is not None:  # keep the moments of parameters that survived (e.g. the MLP after grid growth)
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p in previous.state:
                    optimizer.state[p] = previous.state[p]
    return optimizer


#: marks a folder as a langfield run from its first moment (before config.json and the first checkpoint exist)
RUN_MARKER = ".langfield-run"
#: what a run folder's training writes: replaced by --overwrite
RUN_FILES = (CHECKPOINT_FILE, CONFIG_FILE, "train_log.jsonl", "train_summary.json", "metrics.json")


def all_finite(tensors: list[torch.Tensor]) -> bool:
    """Whether every value of ``tensors`` is finite: one fused norm per tensor (a NaN or inf makes its norm
    non-finite) and one synchronisation, cheaper than an element-wise test."""
    tensors = [t.detach() for t in tensors if t is not None and (t.is_floating_point() or t.is_complex())]
    return not tensors or bool(torch.isfinite(torch.stack(torch._foreach_norm(tensors))).all())


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


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


class Trainer:
    def __init__(self, method: str, config: Any):
        self.spec = get_method(method)
        self.config = config
        self.output = Path(config.output)
        self.tcfg = config.trainer

    def _prepare_output(self) -> dict | None:
        checkpoint = self.output / CHECKPOINT_FILE
        if self.tcfg.resume:
            if self.tcfg.overwrite:
                raise LangfieldError("give --resume or --overwrite, not both")
            spec, saved = read_run_config(self.output)
            if spec.name != self.spec.name:
                raise LangfieldError(f"{self.output}: holds a '{spec.name}' run, not '{self.spec.name}'")
            payload = load_checkpoint(checkpoint, method=self.spec.name)
            for key in ("step", "elapsed", "model", "optimizer", "scene", "rng"):
                if key not in payload:
                    raise LangfieldError(f"{checkpoint}: damaged checkpoint (no '{key}'); start afresh with --overwrite")
            remove_stale_temporaries(self.output)  # left by a writer that was killed
            truncate_log(self.output / "train_log.jsonl", int(payload["step"]))
            # the model is rebuilt exactly as saved; options of the command line apply to the loop
            self.config.model = validate(saved.model, "model.")
            return payload
        if checkpoint.exists() and not self.tcfg.overwrite:
            raise LangfieldError(
                f"{self.output}: already holds a run; pass --resume to continue it, --overwrite to start afresh, "
                "or choose another --output"
            )
        fresh_folder(self.output, self.tcfg.overwrite, owned_marker=RUN_MARKER)
        for name in RUN_FILES:
            (self.output / name).unlink(missing_ok=True)
        (self.output / RUN_MARKER).touch()
        return None

    def _save(self, model: Model, optimizer, step: int, elapsed: float, generator: torch.Generator, critic_optimizer=None) -> None:
        state = model.state_dict()
        if not all_finite(list(state.values())):
            raise LangfieldError(
                f"the parameters became non-finite by step {step}; the last good checkpoint is kept "
                "(lower the learning rates or check the data)"
            )
        save_checkpoint(
            self.output / CHECKPOINT_FILE,
            {
                "method": self.spec.name,
                "step": step,
                "elapsed": elapsed,
                "model": state,
                "optimizer": optimizer.state_dict(),
                **({"critic_optimizer": critic_optimizer.state_dict()} if critic_optimizer is not None else {}),
                "scene": model.scene.state(),
                "rng": {"generator": generator.get_state(), **_rng_state()},
            },
        )

    def _restore(self, payload: dict, model: Model, optimizer, critic_optimizer, generator: torch.Generator) -> tuple[int, float]:
        """Load a checkpoint's state into the rebuilt model, optimisers and generators; a checkpoint that does not
        fit them (another version, a damaged file) is one line."""
        source = self.output / CHECKPOINT_FILE
        try:
            optimizer.load_state_dict(payload["optimizer"])
            if critic_optimizer is not None and "critic_optimizer" in payload:
                critic_optimizer.load_state_dict(payload["critic_optimizer"])
            generator.set_state(payload["rng"]["generator"])
            torch.set_rng_state(payload["rng"]["torch"])
            if "cuda" in payload["rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(payload["rng"]["cuda"])
            return int(payload["step"]), float(payload["elapsed"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise LangfieldError(f"{source}: its training state does not fit this run ({detail}); start afresh with --overwrite") from None

    def _progress(self, step: int, elapsed: float) -> float:
        fractions = [step / max(self.tcfg.max_steps, 1)]
        if self.tcfg.max_seconds is not None:
            fractions.append(elapsed / max(self.tcfg.max_seconds, 1e-9))
        return min(1.0, max(fractions))

    def train(self) -> Path:
        tcfg = self.tcfg
        validate(self.config)  # the command line was checked when parsed; a config built in Python is checked here
        if tcfg.threads:
            torch.set_num_threads(tcfg.threads)
        device = resolve_device(tcfg.device)
        payload = self._prepare_output()
        self.spec.prepare_config(self.config)
        # methods without a `data` option (text-to-3D) train from their own losses alone: no dataset, no ray batches
        dataset = None
        if hasattr(self.config, "data"):
            # saved absolute, so that `langfield eval RUN` works from any working directory
            self.config.data.data = Path(self.config.data.data).resolve()
            dataset = load_dataset(self.config.data)
            console.print(dataset.summary())

        torch.manual_seed(tcfg.seed)
        generator = torch.Generator().manual_seed(tcfg.seed)
        model_class = self.spec.model_class()
        if payload:
            scene = SceneInfo.from_state(payload["scene"])
        else:
            scene = SceneInfo.from_dataset(dataset) if dataset is not None else model_class.initial_scene(self.config.model)
        model = model_class(self.config.model, scene).to(device)
        step, elapsed = 0, 0.0
        if payload:
            try:
                model.load_state_dict(payload["model"])
            except (RuntimeError, KeyError, TypeError) as exc:
                detail = " ".join(str(exc).split("\n", 2)[1:2]).strip() or str(exc).splitlines()[0]
                raise LangfieldError(
                    f"{self.output / CHECKPOINT_FILE}: does not match this version of '{self.spec.name}' ({detail[:160]}); "
                    "start afresh with --overwrite"
                ) from None
            model.to(device)
        optimizer = build_optimizer(model)
        critic_groups = model.critic_param_groups()
        # GAN practice: no first-moment momentum for the adversary
        critic_optimizer = torch.optim.Adam(critic_groups, betas=(0.0, 0.99)) if critic_groups else None
        if payload:
            step, elapsed = self._restore(payload, model, optimizer, critic_optimizer, generator)
            console.print(f"resuming {self.output} from step {step}")
        write_json(self.output / CONFIG_FILE, {"method": self.spec.name, "config": to_dict(self.config)})

        model.prepare(dataset, progress=tcfg.progress)
        batches = RayBatches(dataset, device, generator) if dataset is not None and model.uses_ray_batches else None
        eval_view = None
        if dataset is not None and tcfg.eval_every:
            eval_view = dataset.test_indices[0] if dataset.test_indices else dataset.train_indices[0]
        log = (self.output / "train_log.jsonl").open("a", buffering=1)
        model.train()
        last_checkpoint = time.perf_counter()
        started = time.perf_counter() - elapsed
        first_step, first_elapsed = step, elapsed
        last_psnr = last_loss = float("nan")
        samples_total = 0
        bad_steps = skipped_steps = 0
        last_extra: dict[str, torch.Tensor] = {}
        metric = ("PSNR", " dB") if batches is not None else ("loss", "")
        with progress_bar(self.spec.name, tcfg.progress, *metric) as bar, step_boundaries() as boundary:
            try:
                while step < tcfg.max_steps and self._progress(step, elapsed) < 1.0:
                    progress = self._progress(step, elapsed)
                    if model.before_step(step, progress, generator):
                        optimizer = build_optimizer(model, optimizer)
                    decay = tcfg.lr_final_ratio**progress
                    for group in optimizer.param_groups:
                        group["lr"] = group["initial_lr"] * decay
                    outputs, losses = None, {}
                    if batches is not None:
                        batch = batches.sample(tcfg.batch_rays, model.random_background)
                        outputs = model.render_batch(batch)
                        losses = model.loss(outputs, batch)
                    extra = model.step_losses(step, generator)
                    if extra:
                        total = losses["total"] + extra["total"] if losses else extra["total"]
                        losses = {**losses, **extra, "total": total}
                        last_extra = {k: v for k, v in extra.items() if k != "total"}
                    if not losses:
                        raise LangfieldError(f"method '{self.spec.name}' produced no loss at step {step}")
                    loss = losses["total"]
                    optimizer.zero_grad(set_to_none=True)
                    finite = bool(torch.isfinite(loss))
                    if finite and loss.requires_grad:  # a batch whose rays all miss the occupied cells has nothing to learn
                        loss.backward()
                        finite = all_finite([p.grad for g in optimizer.param_groups for p in g["params"]])
                        if finite:
                            optimizer.step()
                    if finite and critic_optimizer is not None:
                        critic = model.critic_losses(step, generator)
                        critic_optimizer.zero_grad(set_to_none=True)
                        critic["total"].backward()
                        if all_finite([p.grad for g in critic_optimizer.param_groups for p in g["params"]]):
                            critic_optimizer.step()
                        losses = {**losses, **{f"critic_{k}": v for k, v in critic.items()}}
                    if not finite:  # skip the step: the weights stay those of the last good one
                        optimizer.zero_grad(set_to_none=True)
                        bad_steps, skipped_steps = bad_steps + 1, skipped_steps + 1
                        log.write(json.dumps({"step": step, "skipped": "non-finite loss or gradient", "loss": str(float(loss.detach()))}) + "\n")
                        if bad_steps >= tcfg.max_bad_steps:
                            raise LangfieldError(
                                f"{bad_steps} steps in a row had a non-finite loss or gradient (last at step {step}, loss "
                                f"{float(loss.detach())}); the last good checkpoint is kept (lower the learning rates or check the data)"
                            )
                    else:
                        bad_steps = 0
                    step += 1  # a skipped step still counts, so schedules and milestones move on as usual
                    if outputs is not None:
                        samples_total += int(outputs["weights"].numel())
                    elapsed = time.perf_counter() - started
                    if finite:
                        last_loss = float(loss.detach())
                        if "mse" in losses:
                            last_psnr = -10 * math.log10(max(float(losses["mse"].detach()), 1e-10))
                    if finite and (step % 25 == 0 or step == 1):
                        entry = {"step": step, "elapsed": round(elapsed, 3)}
                        if "mse" in losses:
                            entry["psnr"] = round(last_psnr, 3)
                        # terms of `step_losses` come every few steps: the log shows their latest value
                        entry.update({k: float(v.detach()) for k, v in {**last_extra, **losses}.items()})
                        if outputs is not None:
                            entry["samples_per_ray"] = outputs["weights"].numel() / tcfg.batch_rays
                        log.write(json.dumps(entry) + "\n")
                    if eval_view is not None and step % tcfg.eval_every == 0:
                        model.select_view(dataset, eval_view)
                        image = model.render_camera(dataset.cameras, eval_view)["rgb"].cpu()
                        value = psnr(image, dataset.rgb(eval_view))
                        log.write(json.dumps({"step": step, "elapsed": round(elapsed, 3), "eval_view": eval_view, "eval_psnr": value}) + "\n")
                        bar.log(f"step {step}: held-out view {eval_view} PSNR {value:.2f} dB")
                        model.train()
                    bar.update(self._progress(step, elapsed), step, last_psnr if batches is not None else last_loss)
                    if step % tcfg.checkpoint_every == 0 or time.perf_counter() - last_checkpoint > tcfg.checkpoint_seconds:
                        self._save(model, optimizer, step, elapsed, generator, critic_optimizer)
                        last_checkpoint = time.perf_counter()
                    boundary.check()
            except KeyboardInterrupt as exc:
                log.close()
                if saves_on(exc):  # a whole step: save it
                    self._save(model, optimizer, step, elapsed, generator, critic_optimizer)
                    console.print(f"interrupted at step {step}; checkpoint saved; continue with --resume")
                else:  # a second signal cut a step in half: keep the last checkpoint as it is
                    console.print(f"stopped during step {step + 1}; the last checkpoint is kept; continue with --resume")
                raise
            except BaseException:
                log.close()
                raise
        self._save(model, optimizer, step, elapsed, generator, critic_optimizer)
        log.close()
        steps_here = max(step - first_step, 1)
        rate = steps_here / max(elapsed - first_elapsed, 1e-9)
        if batches is not None:
            summary = {
                "steps": step,
                "seconds": round(elapsed, 2),
                "train_psnr": round(last_psnr, 3),
                "samples_per_ray": round(samples_total / (steps_here * tcfg.batch_rays), 2),
                "samples_per_second": round(samples_total / max(elapsed - first_elapsed, 1e-9)),
                "rays_per_second": round(rate * tcfg.batch_rays),
            }
            done = (
                f"train PSNR {last_psnr:.2f} dB, {summary['samples_per_ray']:.1f} samples per ray, "
                f"{summary['samples_per_second']:,} samples/s"
            )
        else:
            summary = {"steps": step, "seconds": round(elapsed, 2), "final_loss": round(last_loss, 5), "steps_per_second": round(rate, 3)}
            done = f"final loss {last_loss:.4g}, {rate:.2f} steps/s"
        summary["skipped_steps"] = skipped_steps
        write_json(self.output / "train_summary.json", summary)
        console.print(f"trained {self.spec.name} for {step} steps in {elapsed:.1f} s ({done}); run saved to {self.output}")
        return self.output
