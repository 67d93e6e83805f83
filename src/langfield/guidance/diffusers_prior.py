"""Diffusion priors from ``diffusers`` pipeline folders (a local path or a hub id in the local cache).

The folder layout is the one ``DiffusionPipeline.save_pretrained`` writes: ``unet/``, ``scheduler/``,
``text_encoder/``, ``tokenizer/`` and, for latent models (Stable Diffusion), ``vae/``. Without ``vae/`` the model
is taken to work in pixel space (DeepFloyd IF stage I: a UNet on 64×64 pixels with a T5 text encoder). Only the
components are loaded, never a pipeline class, so any UNet2DConditionModel-based model works.

Latent SDS: the render is resized to the VAE's input size, encoded *with gradient* (the mean of the latent
distribution, scaled by the VAE's ``scaling_factor``), and the SDS gradient is injected in latent space.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from langfield.errors import LangfieldError
from langfield.guidance.prior import DiffusionPrior, TextCondition, model_to_pixels, pixels_to_model
from langfield.hub import HINT, offline


def _has_component(spec: str, name: str) -> bool:
    path = Path(spec).expanduser()
    if path.is_dir():
        return (path / name).is_dir()
    try:  # a hub id: read model_index.json from the local cache (never downloads when HF_HUB_OFFLINE is set)
        from huggingface_hub import hf_hub_download

        index = json.loads(Path(hf_hub_download(spec, "model_index.json", **offline())).read_text())
    except Exception:
        raise LangfieldError(f"{spec}: not a diffusers model folder and not a cached hub model ({HINT})") from None
    return name in index and index[name][0] is not None


def _text_encoder(spec: str):
    import transformers

    config = transformers.AutoConfig.from_pretrained(spec, subfolder="text_encoder", **offline())
    if config.model_type == "clip_text_model":
        return transformers.CLIPTextModel.from_pretrained(spec, subfolder="text_encoder", **offline())
    if config.model_type in ("t5", "umt5", "mt5"):
        return transformers.T5EncoderModel.from_pretrained(spec, subfolder="text_encoder", **offline())
    return transformers.AutoModel.from_pretrained(spec, subfolder="text_encoder", **offline())


class DiffusersPrior(DiffusionPrior):
    """A ``diffusers`` UNet2DConditionModel with its scheduler's ᾱ, text encoder and tokenizer (and VAE)."""

    unet: Any
    vae: Any

    def __init__(
        self, spec: str, unet, scheduler_config: dict, text_encoder, tokenizer, vae=None, resolution: int | None = None
    ):
        from diffusers import DDPMScheduler  # pyright: ignore[reportPrivateImportUsage]

        scheduler: Any = DDPMScheduler.from_config(scheduler_config)
        super().__init__(scheduler.alphas_cumprod)
        self.name = spec
        self.prediction_type = scheduler.config.prediction_type
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise LangfieldError(
                f"{spec}: prediction type '{self.prediction_type}' is not supported (epsilon or v_prediction)"
            )
        self.unet, self.text_encoder, self.tokenizer, self.vae = unet, text_encoder, tokenizer, vae
        self.latent = vae is not None
        factor = 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 1
        sample = unet.config.sample_size
        sample = sample[0] if isinstance(sample, (list, tuple)) else sample
        self.resolution = int(resolution or sample * factor)
        # T5-style encoders take an attention mask; CLIP's text model in Stable Diffusion reads all 77 positions
        self.uses_mask = text_encoder.config.model_type not in ("clip_text_model",)
        positions = getattr(text_encoder.config, "max_position_embeddings", None) or 10**9
        self.max_tokens = int(min(getattr(tokenizer, "model_max_length", 77) or 77, positions, 512))

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        if not self.latent:
            return (self.unet.config.in_channels, self.resolution, self.resolution)
        side = self.resolution // 2 ** (len(self.vae.config.block_out_channels) - 1)
        return (self.unet.config.in_channels, side, side)

    def text_condition(self, texts: list[str]) -> TextCondition:
        tokens = self.tokenizer(
            list(texts), padding="max_length", max_length=self.max_tokens, truncation=True, return_tensors="pt"
        )
        ids, mask = tokens.input_ids.to(self.device), tokens.attention_mask.to(self.device)
        with torch.no_grad():
            if self.uses_mask:
                states = self.text_encoder(ids, attention_mask=mask)[0]
            else:
                states = self.text_encoder(ids)[0]
        return TextCondition(states, mask.bool() if self.uses_mask else None)

    def _denoiser(self, x: torch.Tensor, t: torch.Tensor, condition: TextCondition) -> torch.Tensor:
        mask = None if condition.mask is None else condition.mask.to(x.dtype)
        return self.unet(
            x.to(self.unet.dtype),
            t,
            encoder_hidden_states=condition.states.to(self.unet.dtype),
            encoder_attention_mask=mask,
        ).sample.to(x.dtype)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        x = pixels_to_model(images, self.resolution)
        if not self.latent:
            return x
        posterior = self.vae.encode(x.to(self.vae.dtype)).latent_dist
        return (posterior.mean * self.vae.config.scaling_factor).float()

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        if self.latent:
            x = self.vae.decode((x / self.vae.config.scaling_factor).to(self.vae.dtype)).sample.float()
        return model_to_pixels(x)


def load_diffusers_prior(spec: str) -> DiffusersPrior:
    """A Stable Diffusion (latent) or IF-style (pixel) prior from a diffusers folder or cached hub id."""
    try:
        import diffusers
        import transformers
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel  # pyright: ignore[reportPrivateImportUsage]
        from transformers import AutoTokenizer
    except ImportError as error:
        raise LangfieldError(f"--guidance {spec} needs the packages diffusers and transformers ({error})") from None
    for library in (diffusers, transformers):  # their loading bars and hints would bury langfield's own output
        library.utils.logging.set_verbosity_error()
        library.utils.logging.disable_progress_bar()
    path = Path(spec).expanduser()
    if path.exists() and not path.is_dir():
        raise LangfieldError(
            f"{spec}: a diffusion model is a diffusers folder (or a .safetensors file of langfield-prior)"
        )
    source = str(path) if path.is_dir() else spec
    if path.is_dir() and not (path / "unet").is_dir():
        raise LangfieldError(
            f"{spec}: no unet/ folder; expected a diffusers pipeline folder (unet/, scheduler/, text_encoder/, "
            "tokenizer/[, vae/])"
        )
    try:
        latent = _has_component(source, "vae")
        unet = UNet2DConditionModel.from_pretrained(source, subfolder="unet", **offline())
        scheduler_config: Any = DDPMScheduler.load_config(source, subfolder="scheduler", **offline())
        text_encoder = _text_encoder(source)
        tokenizer = AutoTokenizer.from_pretrained(source, subfolder="tokenizer", **offline())
        vae = AutoencoderKL.from_pretrained(source, subfolder="vae", **offline()) if latent else None
    except LangfieldError:
        raise
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise LangfieldError(f"{spec}: could not load the diffusion model ({reason})") from None
    prior = DiffusersPrior(spec, unet, scheduler_config, text_encoder, tokenizer, vae)
    text_encoder.requires_grad_(False).eval()
    return prior


__all__ = ["DiffusersPrior", "load_diffusers_prior"]
