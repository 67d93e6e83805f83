"""``langfield-mini``: the embedded, offline CLIP — a locked-text variant (text tower frozen, image tower trained).

- text: the pretrained all-MiniLM-L6-v2 (frozen, :mod:`langfield.encoders.minilm`) → a learned linear projection;
- image: a small residual CNN on 64×64 images (stride-2 stem, three stages, global average pooling) → a learned
  linear projection; its stride-8 feature map is the dense (DINO-style) output;
- a learned temperature.

Trained by ``scripts/train_langfield_mini.py`` (:mod:`langfield.apps.mini_training`) on procedural-world images; the
weights ship as ``weights/langfield-mini.safetensors`` (image tower, projections and temperature — the MiniLM
weights come from their own package). The file's metadata holds the architecture and a training summary.
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
from langfield.errors import LangfieldError
from langfield.tensorfile import read_tensors, write_tensors

NAME = "langfield-mini"
TEXT_WIDTH = 384


def shipped_weights() -> Path:
    return Path(str(resources.files("langfield.encoders") / "weights" / f"{NAME}.safetensors"))


@dataclass(frozen=True)
class MiniArchitecture:
    embed_dim: int = 256
    input_size: int = 64
    widths: tuple[int, ...] = (32, 64, 128, 256)
    """Stem width, then one stride-2 stage per further entry (each: a downsampling conv and a residual block)."""


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            _conv(width, width), nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class ImageTower(nn.Module):
    """(N, 3, S, S) normalised pixels → pooled (N, widths[-1]) and the stride-8 map (N, widths[-2], S/8, S/8)."""

    def __init__(self, widths: tuple[int, ...]):
        super().__init__()
        self.stem = _conv(3, widths[0], stride=2)
        self.stages = nn.ModuleList(
            nn.Sequential(_conv(a, b, stride=2), _Residual(b)) for a, b in zip(widths[:-1], widths[1:])
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stem(x)
        dense = x
        for stage in self.stages:
            dense, x = x, stage(x)
        return x.mean(dim=(2, 3)), dense


class MiniClip(Encoder):
    name = NAME

    def __init__(self, architecture: MiniArchitecture = MiniArchitecture(), text_tower: nn.Module | None = None):
        super().__init__(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
        from langfield.encoders.minilm import MiniLM

        self.architecture = architecture
        self.embed_dim = architecture.embed_dim
        self.input_size = architecture.input_size
        self.text_tower = text_tower if text_tower is not None else MiniLM()
        self.text_projection = nn.Linear(TEXT_WIDTH, architecture.embed_dim, bias=False)
        self.image_tower = ImageTower(tuple(architecture.widths))
        self.image_projection = nn.Linear(architecture.widths[-1], architecture.embed_dim, bias=False)
        self.log_scale = nn.Parameter(torch.tensor(2.6593))  # log(1 / 0.07), CLIP's initial temperature
        self.info: dict = {}

    def logit_scale(self) -> float:
        return float(self.log_scale.detach().exp().clamp(max=100.0))

    def text_features(self, texts: list[str]) -> torch.Tensor:
        """The frozen MiniLM sentence embeddings (N, 384); training projects them itself."""
        return self.text_tower(texts)

    def _text(self, texts: list[str]) -> torch.Tensor:
        return self.text_projection(self.text_tower(texts))

    def _image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.image_projection(self.image_tower(pixels)[0])

    def _dense(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.image_tower(pixels)[1].permute(0, 2, 3, 1)

    # --- weights ------------------------------------------------------------------------------------------------
    def trained_state(self) -> dict[str, torch.Tensor]:
        """The learned tensors (float16 on disk: half the size, no measurable change in accuracy)."""
        return {
            k: (v.half() if v.is_floating_point() else v).detach().cpu().contiguous()
            for k, v in self.state_dict().items()
            if not k.startswith("text_tower.")
        }

    def save(self, path: Path, info: dict | None = None) -> None:
        """Atomically write the trained weights (not the frozen MiniLM) with architecture and info metadata."""
        metadata = {"architecture": json.dumps(asdict(self.architecture)), "info": json.dumps(info or self.info)}
        write_tensors(path, self.trained_state(), metadata)

    @classmethod
    def load(cls, path: Path | None = None, text_tower: nn.Module | None = None) -> "MiniClip":
        path = Path(path) if path is not None else shipped_weights()
        if not path.is_file():
            raise LangfieldError(f"encoder weights not found: {path}")
        state, metadata = read_tensors(path, "langfield-mini weights file")
        try:
            arch = json.loads(metadata["architecture"])
        except (ValueError, KeyError) as error:
            raise LangfieldError(f"{path}: not a langfield-mini weights file ({error})") from error
        model = cls(MiniArchitecture(arch["embed_dim"], arch["input_size"], tuple(arch["widths"])), text_tower)
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("text_tower.")]
        if missing or unexpected:
            raise LangfieldError(
                f"{path}: weights do not match the langfield-mini architecture ({(missing + unexpected)[0]})"
            )
        model.info = json.loads(metadata.get("info", "{}"))
        return model.eval()
