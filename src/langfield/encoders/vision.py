"""``langfield-vision``: the embedded vision-language model on a real, ImageNet-trained backbone.

- image: the frozen EfficientNet-Lite0 (:mod:`langfield.encoders.efficientnet`) at ``input_size`` pixels; the
  globally pooled stride-8, stride-16 and head features (40 + 112 + 1,280 wide) go through a trained head (layer
  norm, a two-layer MLP plus a linear path) into the joint space; the stride-8 map is the dense (DINO-style) output;
- text: the frozen all-MiniLM-L6-v2 (:mod:`langfield.encoders.minilm`) through a trained linear projection;
- a learned temperature.

- optionally (``conse_fallback``) an out-of-distribution gate: the head learnt from procedural images only, and on
  features far from theirs (real photographs) it is unreliable, so the image embedding is the gated concatenation of
  the head's output and the ConSE embedding (the backbone classifier's top-10 class names, MiniLM-embedded, weighted
  by probability), and the text embedding the concatenation of the projected and the raw MiniLM sentence. The gate is
  a logistic function of the diagonal Mahalanobis distance of the backbone features from the training images'
  statistics: ~0 on procedural images (the head decides), ~1 far from them (ConSE decides).

Trained by ``scripts/train_langfield_vision.py`` (:mod:`langfield.apps.vision_training`) on the procedural world's
captions *and* on the backbone's own ImageNet classifier (ConSE-style soft targets over the 1,000 class names, embedded
by the same text tower), which ties the joint space to words for real objects. Only the head, the projection and the
temperature ship (``weights/langfield-vision.safetensors``); the backbone's and MiniLM's weights come from their
packages.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from langfield.encoders.base import Encoder
from langfield.encoders.efficientnet import IMAGENET_MEAN, IMAGENET_STD, load_backbone
from langfield.errors import LangfieldError
from langfield.tensorfile import read_tensors, write_tensors

NAME = "langfield-vision"
TEXT_WIDTH = 384


def shipped_weights() -> Path:
    return Path(str(resources.files("langfield.encoders") / "weights" / f"{NAME}.safetensors"))


@dataclass(frozen=True)
class VisionArchitecture:
    backbone: str = "efficientnet-lite0"
    input_size: int = 160
    """Pixels of the backbone's input (its ImageNet size is 224; 160 runs 2x faster on CPU)."""
    embed_dim: int = 256
    hidden: int = 512
    conse_fallback: bool = False
    """The out-of-distribution gate to ConSE (its statistics and the class-name embeddings ship with the weights)."""


def pooled_features(maps: dict) -> torch.Tensor:
    """(N, 40 + 112 + 1280): the globally pooled stride-8 and stride-16 maps beside the head's pooled features."""
    return torch.cat([maps[8].mean(dim=(2, 3)), maps[16].mean(dim=(2, 3)), maps["pooled"]], dim=1)


class VisionHead(nn.Module):
    """Backbone features → joint space: layer norm, then an MLP beside a linear path."""

    def __init__(self, width: int, hidden: int, embed_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, embed_dim))
        self.linear = nn.Linear(width, embed_dim, bias=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.norm(features)
        return self.mlp(x) + self.linear(x)


class VisionClip(Encoder):
    name = NAME
    # buffers of the ConSE fallback (architecture.conse_fallback)
    gate_mean: torch.Tensor
    gate_inv_std: torch.Tensor
    gate_threshold: torch.Tensor
    gate_width: torch.Tensor
    name_embeddings: torch.Tensor

    def __init__(self, architecture: VisionArchitecture = VisionArchitecture(), text_tower: nn.Module | None = None):
        super().__init__(mean=IMAGENET_MEAN, std=IMAGENET_STD)
        from langfield.encoders.minilm import MiniLM

        self.architecture = architecture
        self.embed_dim = architecture.embed_dim + (TEXT_WIDTH if architecture.conse_fallback else 0)
        self.input_size = architecture.input_size
        self.backbone = load_backbone(architecture.backbone).requires_grad_(False)
        width = sum(self.backbone.dense_widths.values()) + self.backbone.width
        self.head = VisionHead(width, architecture.hidden, architecture.embed_dim)
        self.text_tower = text_tower if text_tower is not None else MiniLM()
        self.text_projection = nn.Linear(TEXT_WIDTH, architecture.embed_dim, bias=False)
        self.log_scale = nn.Parameter(torch.tensor(2.6593))  # log(1 / 0.07), CLIP's initial temperature
        if architecture.conse_fallback:  # fitted by langfield.apps.vision_training.fit_gate
            self.register_buffer("gate_mean", torch.zeros(width))
            self.register_buffer("gate_inv_std", torch.ones(width))
            self.register_buffer("gate_threshold", torch.tensor(1.0))
            self.register_buffer("gate_width", torch.tensor(1.0))
            self.register_buffer("name_embeddings", torch.zeros(1000, TEXT_WIDTH))  # unit MiniLM class prompts
        self.info: dict = {}

    def train(self, mode: bool = True) -> "VisionClip":
        super().train(mode)
        self.backbone.eval()  # frozen, BatchNorm statistics included
        self.text_tower.eval()
        return self

    def logit_scale(self) -> float:
        return float(self.log_scale.detach().exp().clamp(max=100.0))

    def text_features(self, texts: list[str]) -> torch.Tensor:
        """The frozen MiniLM sentence embeddings (N, 384); training projects them itself."""
        return self.text_tower(texts)

    def backbone_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels → the head's input (N, 1432)."""
        return pooled_features(self.backbone(pixels))

    def _text(self, texts: list[str]) -> torch.Tensor:
        sentence = self.text_tower(texts)
        projected = self.text_projection(sentence)
        if not self.architecture.conse_fallback:
            return projected
        return torch.cat([F.normalize(projected, dim=-1), F.normalize(sentence, dim=-1)], dim=-1)

    def distance(self, features: torch.Tensor) -> torch.Tensor:
        """(N,) mean squared standardised distance of head inputs from the training images' (1 on average there)."""
        return ((features - self.gate_mean) * self.gate_inv_std).pow(2).mean(dim=-1)

    def gate(self, features: torch.Tensor) -> torch.Tensor:
        """(N,) the ConSE share: ~0 for features like the training images', ~1 far from them."""
        return torch.sigmoid((self.distance(features) - self.gate_threshold) / self.gate_width)

    def _image(self, pixels: torch.Tensor) -> torch.Tensor:
        if not self.architecture.conse_fallback:
            return self.head(self.backbone_features(pixels))
        maps = self.backbone(pixels)
        features = pooled_features(maps)
        head = F.normalize(self.head(features), dim=-1)
        weights = conse_targets(torch.softmax(self.backbone.logits(maps["pooled"]), dim=-1))
        conse = F.normalize(weights @ self.name_embeddings, dim=-1)
        share = self.gate(features)[:, None]
        return torch.cat([(1 - share) * head, share * conse], dim=-1)

    def _dense(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone(pixels)[8].permute(0, 2, 3, 1)

    def imagenet_probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 1000) the backbone's own ImageNet classifier on ``images``."""
        return torch.softmax(self.backbone.logits(self.backbone(self.preprocess(images))["pooled"]), dim=-1)

    # --- weights ------------------------------------------------------------------------------------------------
    def trained_state(self) -> dict[str, torch.Tensor]:
        return {
            k: v.detach().cpu().contiguous()
            for k, v in self.state_dict().items()
            if not k.startswith(("text_tower.", "backbone."))
        }

    def save(self, path: Path, info: dict | None = None) -> None:
        """Atomically write the trained tensors (not the frozen backbone or MiniLM) with their metadata."""
        metadata = {"architecture": json.dumps(asdict(self.architecture)), "info": json.dumps(info or self.info)}
        write_tensors(path, self.trained_state(), metadata)

    @classmethod
    def load(cls, path: Path | None = None, text_tower: nn.Module | None = None) -> "VisionClip":
        path = Path(path) if path is not None else shipped_weights()
        if not path.is_file():
            raise LangfieldError(f"encoder weights not found: {path}")
        state, metadata = read_tensors(path, "langfield-vision weights file")
        try:
            architecture = VisionArchitecture(**json.loads(metadata["architecture"]))
        except (ValueError, KeyError, TypeError) as error:
            raise LangfieldError(f"{path}: not a langfield-vision weights file ({error})") from error
        model = cls(architecture, text_tower)
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith(("text_tower.", "backbone."))]
        if missing or unexpected:
            raise LangfieldError(
                f"{path}: weights do not match the langfield-vision architecture ({(missing + unexpected)[0]})"
            )
        model.info = json.loads(metadata.get("info", "{}"))
        return model.eval()


def conse_targets(probabilities: torch.Tensor, top: int = 10) -> torch.Tensor:
    """The classifier's top-``top`` probabilities renormalised (ConSE's convex combination weights), (N, 1000)."""
    values, indices = probabilities.topk(top, dim=-1)
    return torch.zeros_like(probabilities).scatter_(1, indices, values / values.sum(1, keepdim=True))


def class_name_prompts(names) -> list[str]:
    return [f"a photo of a {name}." for name in names]
