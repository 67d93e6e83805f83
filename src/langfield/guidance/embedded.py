"""``langfield-prior``: the embedded text-to-image diffusion model.

A small pixel-space ``diffusers`` UNet2DConditionModel (32×32 RGB, ε-prediction, cosine noise schedule, 1,000
steps) whose cross-attention reads the frozen MiniLM token states of the prompt (up to ``MAX_TOKENS`` tokens,
padding masked). Trained by ``scripts/train_langfield_prior.py`` on procedural-world renders of single objects
from many viewpoints, captioned with the world's training wordings and a view suffix (", front view" / side /
back / overhead). The weights ship as ``weights/langfield-prior.safetensors``; the UNet and schedule
configurations and a training summary are in the file's metadata.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch

from langfield.errors import LangfieldError
from langfield.guidance.prior import DiffusionPrior, TextCondition, model_to_pixels, pixels_to_model
from langfield.tensorfile import read_tensors, write_tensors

NAME = "langfield-prior"
MAX_TOKENS = 16
TEXT_WIDTH = 384  # MiniLM

#: the shipped architecture (a test builds it at random to check the path without the weights)
DEFAULT_UNET = {
    "sample_size": 32,
    "in_channels": 3,
    "out_channels": 3,
    "layers_per_block": 1,
    "block_out_channels": [32, 64, 128],
    "down_block_types": ["DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
    "cross_attention_dim": TEXT_WIDTH,
    "attention_head_dim": 8,
    "norm_num_groups": 16,
}
DEFAULT_SCHEDULE = {"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2"}


def default_path() -> Path:
    return Path(str(resources.files("langfield.guidance") / "weights" / f"{NAME}.safetensors"))


def alphas_cumprod(schedule: dict) -> torch.Tensor:
    from diffusers import DDPMScheduler  # pyright: ignore[reportPrivateImportUsage]

    return DDPMScheduler(**schedule).alphas_cumprod


class EmbeddedPrior(DiffusionPrior):
    name = NAME
    prediction_type = "epsilon"

    def __init__(self, unet_config: dict | None = None, schedule: dict | None = None, text_tower=None):
        from diffusers import UNet2DConditionModel  # pyright: ignore[reportPrivateImportUsage]

        self.unet_config = dict(unet_config or DEFAULT_UNET)
        self.schedule = dict(schedule or DEFAULT_SCHEDULE)
        super().__init__(alphas_cumprod(self.schedule))
        self.unet = UNet2DConditionModel(**self.unet_config)
        self.resolution = int(self.unet_config["sample_size"])
        self._text_tower = text_tower  # frozen MiniLM, shared, never saved with the prior
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.info: dict = {}

    @property
    def text_tower(self):
        if self._text_tower is None:
            from langfield.encoders.minilm import MiniLM

            self._text_tower = MiniLM()
        return self._text_tower

    def text_condition(self, texts: list[str]) -> TextCondition:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        for start in range(0, len(missing), 256):
            chunk = missing[start : start + 256]
            states, mask = self.text_tower.token_states(chunk, MAX_TOKENS)
            self._cache.update({t: (s.cpu(), m.cpu()) for t, s, m in zip(chunk, states, mask)})
        states = torch.stack([self._cache[t][0] for t in texts]).to(self.device)
        mask = torch.stack([self._cache[t][1] for t in texts]).to(self.device)
        return TextCondition(states, mask)

    def _denoiser(self, x: torch.Tensor, t: torch.Tensor, condition: TextCondition) -> torch.Tensor:
        mask = None if condition.mask is None else condition.mask.to(x.dtype)
        return self.unet(x, t, encoder_hidden_states=condition.states, encoder_attention_mask=mask).sample

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        return pixels_to_model(images, self.resolution)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return model_to_pixels(x)

    # --- weights ----------------------------------------------------------------------------------------------------
    def save(self, path: Path, info: dict | None = None) -> None:
        """Atomically write the UNet weights with the architecture, schedule and training summary as metadata."""
        # float16 on disk (half the size; the model runs in float32 after loading)
        state = {
            k: (v.half() if v.is_floating_point() else v).detach().contiguous().cpu()
            for k, v in self.unet.state_dict().items()
        }
        metadata = {
            "unet": json.dumps(self.unet_config),
            "schedule": json.dumps(self.schedule),
            "info": json.dumps(info or self.info),
        }
        write_tensors(path, state, metadata)

    @classmethod
    def load(cls, path: Path | None = None, text_tower=None) -> "EmbeddedPrior":
        path = Path(path) if path is not None else default_path()
        if not path.is_file():
            hint = " (re-create it with scripts/train_langfield_prior.py)" if path == default_path() else ""
            raise LangfieldError(f"{path}: prior weights not found{hint}")
        state, metadata = read_tensors(path, f"{NAME} weights file")
        try:
            unet_config, schedule = json.loads(metadata["unet"]), json.loads(metadata["schedule"])
        except (KeyError, ValueError) as error:
            raise LangfieldError(f"{path}: not a {NAME} weights file ({type(error).__name__})") from None
        prior = cls(unet_config, schedule, text_tower)
        missing, unexpected = prior.unet.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise LangfieldError(f"{path}: weights do not match the architecture in its metadata")
        if path != default_path():
            prior.name = str(path)
        prior.info = json.loads(metadata.get("info", "{}"))
        return prior
