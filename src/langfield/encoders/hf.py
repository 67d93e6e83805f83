"""Hugging Face ``transformers`` backends: CLIP (text + image) and DINO / DINOv2 (image and dense features).

Loaded from a local folder or a hub id (``from_pretrained``); the model's input size and normalisation come from
its ``preprocessor_config.json`` when present (otherwise the model config and the usual CLIP / ImageNet
statistics), and are applied by the differentiable preprocessing of :class:`~langfield.encoders.base.Encoder`,
not by the (PIL-based) processors. ``transformers`` is imported only here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from langfield.encoders.base import Encoder
from langfield.errors import LangfieldError, one_line
from langfield.hub import HINT, downloads_allowed

CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
DINO_TYPES = ("dinov2", "dinov2_with_registers", "vit", "dinov3_vit")


def _size(value, default: int) -> int:
    if isinstance(value, dict):
        return int(value.get("height") or value.get("shortest_edge") or default)
    return int(value) if value else default


def preprocessing(folder: Path | None, image_size: int, mean, std) -> tuple[int, tuple, tuple]:
    """(input size, mean, std) from ``preprocessor_config.json`` in ``folder`` when it exists."""
    file = folder / "preprocessor_config.json" if folder is not None else None
    if file is None or not file.is_file():
        return image_size, mean, std
    config = json.loads(file.read_text())
    size = _size(config.get("crop_size"), 0) or _size(config.get("size"), image_size)
    return size, tuple(config.get("image_mean", mean)), tuple(config.get("image_std", std))


class HFClipEncoder(Encoder):
    """A ``transformers.CLIPModel`` with its tokenizer. ``encode_image`` = projected pooled (CLS) output;
    ``dense_features`` = patch tokens through the final layer norm and the visual projection (MaskCLIP-style)."""

    model: Any
    embed_dim: int

    def __init__(self, model: Any, tokenizer, name: str = "clip", folder: Path | None = None):
        vision = model.config.vision_config
        size, mean, std = preprocessing(folder, vision.image_size, CLIP_MEAN, CLIP_STD)
        super().__init__(mean, std)
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.name = name
        self.input_size = size
        self.embed_dim = model.config.projection_dim
        self.patch_size = vision.patch_size
        self.max_tokens = model.config.text_config.max_position_embeddings

    def logit_scale(self) -> float:
        return float(self.model.logit_scale.detach().exp().clamp(max=100.0))

    def _text(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        out = self.model.text_model(
            input_ids=tokens["input_ids"].to(self.device), attention_mask=tokens["attention_mask"].to(self.device)
        )
        return self.model.text_projection(out.pooler_output)

    def _image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.visual_projection(
            self.model.vision_model(pixel_values=pixels, interpolate_pos_encoding=True).pooler_output
        )

    def _dense(self, pixels: torch.Tensor) -> torch.Tensor:
        tokens = self.model.vision_model(pixel_values=pixels, interpolate_pos_encoding=True).last_hidden_state[:, 1:]
        features = self.model.visual_projection(self.model.vision_model.post_layernorm(tokens))
        side = pixels.shape[-1] // self.patch_size
        return features.reshape(features.shape[0], side, side, -1)


class HFDinoEncoder(Encoder):
    """DINO (``ViTModel``) or DINOv2 (``Dinov2Model``): image embedding = the normalised CLS token; dense features =
    the patch tokens on their grid. It has no text tower."""

    has_text = False

    model: Any
    embed_dim: int

    def __init__(self, model: Any, name: str = "dino", folder: Path | None = None):
        size, mean, std = preprocessing(folder, model.config.image_size, IMAGENET_MEAN, IMAGENET_STD)
        super().__init__(mean, std)
        self.model = model.eval().requires_grad_(False)
        self.name = name
        self.input_size = size
        self.embed_dim = model.config.hidden_size
        self.patch_size = model.config.patch_size

    def _tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixels).last_hidden_state

    def _image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self._tokens(pixels)[:, 0]

    def _dense(self, pixels: torch.Tensor) -> torch.Tensor:
        side = pixels.shape[-1] // self.patch_size
        patches = self._tokens(pixels)[:, -side * side :]  # skips CLS and any register tokens
        return patches.reshape(patches.shape[0], side, side, -1)


def load_hf_encoder(spec: str) -> Encoder:
    """A CLIP or DINO encoder from a local folder or a hub id; one-line errors when it cannot be loaded."""
    try:
        import transformers
    except ImportError as error:
        raise LangfieldError(f"encoder '{spec}' needs the package transformers (pip install transformers)") from error
    folder = Path(spec).expanduser()
    is_folder = folder.is_dir()
    if not is_folder and (spec.startswith((".", "/", "~")) or folder.suffix or spec.count("/") > 1):
        raise LangfieldError(f"encoder '{spec}': no such folder (and not a hub id like 'openai/clip-vit-base-patch16')")
    source = str(folder) if is_folder else spec
    try:
        try:  # a folder or a cached hub model never touches the network
            model_type = transformers.AutoConfig.from_pretrained(source, local_files_only=True).model_type
            local = True
        except OSError:
            if is_folder or not downloads_allowed():
                raise
            model_type, local = transformers.AutoConfig.from_pretrained(source).model_type, False
        if model_type == "clip":
            model = transformers.CLIPModel.from_pretrained(source, local_files_only=local)
            tokenizer = transformers.AutoTokenizer.from_pretrained(source, local_files_only=local)
            return HFClipEncoder(model, tokenizer, spec, folder if is_folder else _cached_folder(source))
        if model_type in DINO_TYPES:
            extra: dict[str, Any] = {"add_pooling_layer": False} if model_type == "vit" else {}
            model = transformers.AutoModel.from_pretrained(source, local_files_only=local, **extra)
            return HFDinoEncoder(model, spec, folder if is_folder else _cached_folder(source))
    except (OSError, ValueError, KeyError) as error:
        where = "the folder" if is_folder else f"the Hugging Face cache ({HINT})"
        raise LangfieldError(f"cannot load encoder '{spec}' from {where}: {one_line(error)}") from None
    raise LangfieldError(f"encoder '{spec}' is a '{model_type}' model; supported: clip, {', '.join(DINO_TYPES)}")


def _cached_folder(repo_id: str) -> Path | None:
    """The local snapshot folder of a hub model (for its preprocessor_config.json), if any."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # no snapshot cached: fall back to the model config's defaults
        return None
