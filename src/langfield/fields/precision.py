"""Reduced precision for inference: a small MLP evaluated in bfloat16 where the hardware computes it fast (CPUs with
AVX-512 BF16 or AMX, CUDA GPUs), for renders that need no gradient. Training and gradients stay in float32."""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn
from torch.nn import functional as F


@lru_cache(maxsize=None)
def fast_bfloat16(device_type: str) -> bool:
    """True where bfloat16 matrix products beat float32: CUDA GPUs from Ampere on, and CPUs whose oneDNN has native
    bfloat16."""
    if device_type == "cuda":  # tensor cores with bfloat16 from Ampere (compute capability 8) on
        return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8
    if device_type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def inference_mlp(mlp: nn.Sequential, x: torch.Tensor, bfloat16: bool) -> torch.Tensor:
    """``mlp(x)``, in bfloat16 when ``bfloat16`` is asked, no gradient is being recorded and the device computes it
    fast; the result is float32 either way. ``mlp`` holds ``Linear`` layers and element-wise activations."""
    if not bfloat16 or torch.is_grad_enabled() or not fast_bfloat16(x.device.type):
        return mlp(x)
    h = x.to(torch.bfloat16)
    for layer in mlp:
        if isinstance(layer, nn.Linear):
            bias = None if layer.bias is None else layer.bias.to(torch.bfloat16)
            h = F.linear(h, layer.weight.to(torch.bfloat16), bias)
        else:
            h = layer(h)
    return h.float()
