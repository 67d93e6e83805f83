"""Vision-language encoders behind one interface (:class:`~langfield.encoders.base.Encoder`).

``load_encoder(spec)`` picks the backend from one string, the value of every method's ``--encoder`` option:

- ``langfield-mini`` (default): the embedded offline CLIP shipped with the package (image tower trained from scratch
  on the procedural world);
- ``langfield-vision``: the embedded vision-language model on the real ImageNet-trained EfficientNet-Lite0
  (:mod:`langfield.encoders.vision`);
- ``efficientnet-lite0`` / ``-lite1`` / ``-lite2`` (``@N`` for an input of N pixels instead of 224 / 240 / 260, e.g.
  ``efficientnet-lite0@128``): the real backbone alone (no text tower: image-only uses such as
  DietNeRF's loss or LERF's dense targets, and its ImageNet classifier);
- ``langfield-mini-random``: the same architecture with random image weights (a control for experiments);
- ``PATH.safetensors``: langfield-mini or langfield-vision weights trained by ``scripts/train_langfield_mini.py`` /
  ``scripts/train_langfield_vision.py`` (told apart by the file's metadata);
- a local folder or hub id of a Hugging Face ``transformers`` CLIP, DINO or DINOv2 model.
"""

from __future__ import annotations

from langfield.encoders.base import Encoder

DEFAULT_ENCODER = "langfield-mini"

__all__ = ["DEFAULT_ENCODER", "Encoder", "load_encoder"]


def load_encoder(spec: str = DEFAULT_ENCODER, device=None) -> Encoder:
    from langfield.errors import LangfieldError

    spec = (spec or "").strip()
    if not spec:
        raise LangfieldError("--encoder must name an encoder (e.g. langfield-mini or a CLIP folder)")
    if spec == DEFAULT_ENCODER:
        from langfield.encoders.mini import MiniClip

        encoder = MiniClip.load()
    elif spec == f"{DEFAULT_ENCODER}-random":
        import torch

        from langfield.encoders.mini import MiniClip

        torch.manual_seed(0)
        encoder = MiniClip().eval()
        encoder.name = spec
    elif spec == "langfield-vision":
        from langfield.encoders.vision import VisionClip

        encoder = VisionClip.load()
    elif spec.startswith("efficientnet-"):
        from langfield.encoders.efficientnet import EfficientNetEncoder

        name, _, size = spec.partition("@")  # efficientnet-lite0@128: another input size than ImageNet's
        if size and not (size.isdigit() and 32 <= int(size) <= 1024):
            raise LangfieldError(f"--encoder {spec}: the input size after '@' must be a whole number in [32, 1024]")
        encoder = EfficientNetEncoder(name, int(size) if size else None)
        encoder.name = spec
    elif spec.endswith(".safetensors"):
        from pathlib import Path

        from langfield.encoders.mini import MiniClip
        from langfield.encoders.vision import VisionClip
        from langfield.tensorfile import read_tensors

        path = Path(spec).expanduser()
        if not path.is_file():
            raise LangfieldError(f"encoder weights not found: {path}")
        _, metadata = read_tensors(path, "encoder weights file")
        kind = VisionClip if '"backbone"' in metadata.get("architecture", "") else MiniClip
        encoder = kind.load(path)
        encoder.name = spec
    else:
        from langfield.encoders.hf import load_hf_encoder

        encoder = load_hf_encoder(spec)
    encoder.requires_grad_(False).eval()  # methods never train the encoder; gradients still reach the images
    return encoder.to(device) if device is not None else encoder
