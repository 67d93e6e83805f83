"""Vision-language encoders behind one interface (:class:`~langfield.encoders.base.Encoder`).

``load_encoder(spec)`` picks the backend from one string, the value of every method's ``--encoder`` option:

- ``langfield-mini`` (default): the embedded offline CLIP shipped with the package;
- ``langfield-mini-random``: the same architecture with random image weights (a control for experiments);
- ``PATH.safetensors``: langfield-mini weights trained by ``scripts/train_langfield_mini.py``;
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
    elif spec.endswith(".safetensors"):
        from pathlib import Path

        from langfield.encoders.mini import MiniClip

        encoder = MiniClip.load(Path(spec).expanduser())
        encoder.name = spec
    else:
        from langfield.encoders.hf import load_hf_encoder

        encoder = load_hf_encoder(spec)
    encoder.requires_grad_(False).eval()  # methods never train the encoder; gradients still reach the images
    return encoder.to(device) if device is not None else encoder
