"""CLIP-NeRF's mappers (Wang et al. 2022, Sec. 3.3): two small MLPs that map an encoder embedding — of a text prompt
or of an exemplar image — to offsets of the shape code and of the appearance code. An edit is one forward pass:
``z_s + M_s(e)``, ``z_a + M_a(e)``.

Training keeps the generator and the encoder frozen. Each step takes source objects and a target per object (a
prompt of the library, or — for exemplar editing — the embedding of a render of another object) and renders the
object from a random view with its shape offset only (when the target may move the shape: a size word, an exemplar)
and with its appearance offset only (a colour or material word, an exemplar) — the paper trains the shape mapper
through shape edits and the appearance mapper through appearance edits. The loss is

    λ_clip · (1 − cos(E(render), e))  +  λ_real · realism(edited codes)  +  λ_id · |offsets the target may not make|²

where realism keeps the edited codes where the generator has learned to draw (the negative log-likelihood of the
codes under the Gaussian of the training codes, or of the code prior of an adversarial run), and the identity term
keeps "a red chair" from moving the shape code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal, Optional

import torch
from torch import nn

from langfield.checks import NON_NEGATIVE, SEED, UNIT, at_least
from langfield.errors import LangfieldError
from langfield.methods.clipnerf.prompts import Prompt
from langfield.methods.clipnerf.views import ObjectViews
from langfield.tensorfile import read_tensors, write_tensors
from langfield.train.loop import LoopSettings, Task, TrainingLoop

Part = Literal["both", "shape", "appearance"]


@dataclass
class MapperConfig:
    encoder: str = "langfield-mini"
    """The encoder whose embeddings drive the edits (langfield-mini, a CLIP folder or hub id)."""
    prompts: Optional[Path] = None
    """A text file of prompts, one per line (default: the category's library from the world's vocabulary)."""
    steps: Annotated[int, at_least(1)] = 1000
    batch: Annotated[int, at_least(1)] = 6
    """Source objects per step (each rendered twice: a shape edit and an appearance edit)."""
    resolution: Annotated[int, at_least(8)] = 32
    """Renders are this many pixels square (the encoder resizes them to its input)."""
    width: Annotated[int, at_least(1)] = 256
    depth: Annotated[int, at_least(1)] = 3
    """Hidden layers of each mapper."""
    lr: Annotated[float, NON_NEGATIVE] = 1e-3
    clip_weight: Annotated[float, NON_NEGATIVE] = 1.0
    realism_weight: Annotated[float, NON_NEGATIVE] = 0.02
    identity_weight: Annotated[float, NON_NEGATIVE] = 1.0
    """Weight of the offsets a prompt may not make (a colour prompt moving the shape), in code-spread units squared."""
    exemplar_fraction: Annotated[float, UNIT] = 0.25
    """Share of the targets that are renders of other objects (trains exemplar-image editing)."""
    seed: Annotated[int, SEED] = 0


class Mapper(nn.Module):
    """embedding (N, E) → code offset (N, D), in units of the codes' spread per dimension; zero at initialisation,
    so an untrained mapper edits nothing."""

    def __init__(self, embed_dim: int, code_dim: int, width: int, depth: int):
        super().__init__()
        layers: list[nn.Module] = []
        size = embed_dim
        for _ in range(depth):
            layers += [nn.Linear(size, width), nn.LeakyReLU(0.2)]
            size = width
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(size, code_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(embedding))


class ClipMappers(nn.Module):
    shape_mean: torch.Tensor
    shape_std: torch.Tensor
    appearance_mean: torch.Tensor
    appearance_std: torch.Tensor

    def __init__(self, embed_dim: int, shape_dim: int, appearance_dim: int, width: int = 256, depth: int = 3):
        super().__init__()
        self.shape = Mapper(embed_dim, shape_dim, width, depth)
        self.appearance = Mapper(embed_dim, appearance_dim, width, depth)
        # the training codes' mean and spread (per dimension): offsets are scaled by the spread, realism measured in it
        for name, dim in (("shape", shape_dim), ("appearance", appearance_dim)):
            self.register_buffer(f"{name}_mean", torch.zeros(dim))
            self.register_buffer(f"{name}_std", torch.ones(dim))
        self.info: dict = {}

    def set_code_statistics(
        self, shape: tuple[torch.Tensor, torch.Tensor], appearance: tuple[torch.Tensor, torch.Tensor]
    ) -> None:
        for name, (mean, std) in (("shape", shape), ("appearance", appearance)):
            getattr(self, f"{name}_mean").copy_(mean)
            getattr(self, f"{name}_std").copy_(std.clamp_min(1e-6))

    def forward(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(shape offsets, appearance offsets) for unit embeddings (N, E)."""
        return self.shape(embedding) * self.shape_std, self.appearance(embedding) * self.appearance_std

    def realism(self, shape: torch.Tensor, appearance: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood per dimension of codes (N, D) under the training codes' Gaussian (+ a constant)."""
        s = (shape - self.shape_mean) / self.shape_std
        a = (appearance - self.appearance_mean) / self.appearance_std
        return 0.5 * (s.pow(2).mean() + a.pow(2).mean())

    def edit(
        self,
        embedding: torch.Tensor,
        shape: torch.Tensor,
        appearance: torch.Tensor,
        part: Part = "both",
        strength: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Edited codes: the offsets of ``part``, times ``strength``, added to the source codes."""
        if part not in ("both", "shape", "appearance"):
            raise LangfieldError(f"--part must be both, shape or appearance, got {part!r}")
        with torch.no_grad():
            ds, da = (strength * d for d in self(embedding.reshape(1, -1).to(self.shape_mean)))
        return (shape + ds[0] if part != "appearance" else shape), (
            appearance + da[0] if part != "shape" else appearance
        )

    # -- files -----------------------------------------------------------------------------------------------------
    def state(self, encoder: str, config: MapperConfig, info: dict) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """(tensors, string metadata): the mappers and what they were trained with."""
        shapes = {
            "embed_dim": self.shape.body[0].in_features,
            "shape_dim": self.shape.out.out_features,
            "appearance_dim": self.appearance.out.out_features,
            "width": config.width,
            "depth": config.depth,
        }
        config_dict = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}
        metadata = {
            "encoder": encoder,
            "architecture": json.dumps(shapes),
            "config": json.dumps(config_dict),
            "info": json.dumps(info),
        }
        return {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}, metadata

    def save(self, path: Path, encoder: str, config: MapperConfig, info: dict) -> None:
        """Atomically write the mappers (safetensors, with what they were trained with as metadata)."""
        write_tensors(path, *self.state(encoder, config, info))

    @staticmethod
    def from_state(
        tensors: dict[str, torch.Tensor], metadata: dict[str, str], source: str
    ) -> tuple["ClipMappers", str]:
        """(mappers, the encoder they were trained with) from :meth:`state`'s output."""
        try:
            arch = json.loads(metadata["architecture"])
            mappers = ClipMappers(
                arch["embed_dim"], arch["shape_dim"], arch["appearance_dim"], arch["width"], arch["depth"]
            )
            mappers.load_state_dict(tensors)
        except (ValueError, KeyError, RuntimeError) as error:
            raise LangfieldError(
                f"{source}: not a clipnerf mappers file ({str(error).splitlines()[0][:120]})"
            ) from None
        mappers.info = json.loads(metadata.get("info", "{}"))
        return mappers.eval(), metadata["encoder"]

    @staticmethod
    def load(path: Path) -> tuple["ClipMappers", str]:
        path = Path(path)
        if not path.is_file():
            raise LangfieldError(f"{path}: no mappers here; train them with `langfield mappers RUN`")
        return ClipMappers.from_state(*read_tensors(path, "clipnerf mappers file"), str(path))


def render_views(model, cameras, shape: torch.Tensor, appearance: torch.Tensor) -> dict[str, torch.Tensor]:
    """``rgb`` (N, H, W, 3) and ``opacity`` (N, H, W) of ``model`` (a clipnerf model) seen from N cameras, view i with
    codes ``shape[i]``, ``appearance[i]``; differentiable with respect to the codes."""
    count, h, w = len(cameras), cameras.height, cameras.width
    device = model.box.device
    pixels = h * w
    views = torch.arange(count, device=device).repeat_interleave(pixels)
    origins, directions = cameras.to(device).pixel_rays(views, torch.arange(pixels, device=device).repeat(count))
    out = model.render(origins, directions, shape[views], appearance[views])
    return {"rgb": out["rgb"].view(count, h, w, 3), "opacity": out["opacity"].view(count, h, w)}


def mapper_losses(
    model,
    encoder,
    mappers: ClipMappers,
    shape: torch.Tensor,
    appearance: torch.Tensor,
    target: torch.Tensor,
    cameras,
    shape_mask: torch.Tensor | None = None,
    appearance_mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The losses of one batch: source codes (B, D), unit target embeddings (B, E), one camera per source, and which
    sources' targets may move the shape / the appearance (default: all). A source whose target may move the shape is
    rendered with its shape edited; one whose target may move the appearance, with its appearance edited. Returns
    ``clip`` (mean 1 − cos of those renders to their targets), ``realism`` (the edited codes under the training codes'
    Gaussian) and ``identity`` (the offsets a target may not make, in units of the codes' spread, squared)."""
    count = len(target)
    every = torch.ones(count, dtype=torch.bool, device=target.device)
    shape_mask = every if shape_mask is None else shape_mask.to(target.device)
    appearance_mask = every if appearance_mask is None else appearance_mask.to(target.device)
    ds, da = mappers(target)
    first, second = shape_mask.nonzero()[:, 0], appearance_mask.nonzero()[:, 0]
    chosen = torch.cat([first, second])
    edited_shape = torch.cat([shape[first] + ds[first], shape[second]])
    edited_appearance = torch.cat([appearance[first], appearance[second] + da[second]])
    images = render_views(model, cameras[chosen.cpu()], edited_shape, edited_appearance)["rgb"]
    clip = (1 - (encoder.encode_image(images) * target[chosen]).sum(-1)).mean()
    keep_shape, keep_appearance = (~shape_mask).float(), (~appearance_mask).float()
    identity = (((ds / mappers.shape_std) ** 2).mean(-1) * keep_shape).sum() / count + (
        ((da / mappers.appearance_std) ** 2).mean(-1) * keep_appearance
    ).sum() / count
    realism = mappers.realism(shape + ds * shape_mask[:, None], appearance + da * appearance_mask[:, None])
    return {"clip": clip, "realism": realism, "identity": identity}


class MapperTask(Task):
    """The two mappers of a frozen clipnerf model, against a frozen encoder, on a list of prompts."""

    def __init__(self, model, encoder, prompts: list[Prompt], config: MapperConfig):
        self.model, self.encoder, self.config = model, encoder, config
        self.device = device = model.box.device
        self.views = ObjectViews.of(model.scene.cameras)
        self.text = encoder.encode_text([p.text for p in prompts]).to(device)
        self.may_shape = torch.tensor([p.shape for p in prompts])
        self.may_appearance = torch.tensor([p.appearance for p in prompts])
        self.mappers = ClipMappers(
            self.text.shape[1], model.shape_codes.shape[1], model.appearance_codes.shape[1], config.width, config.depth
        ).to(device)
        self.mappers.set_code_statistics(*model.code_statistics())
        self.optimizer = torch.optim.Adam(self.mappers.parameters(), lr=config.lr)
        self.history: list[dict] = []

    def losses(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        model, encoder, config, device = self.model, self.encoder, self.config, self.device
        shape, appearance = model.sample_codes(config.batch, generator)
        chosen = torch.randint(len(self.text), (config.batch,), generator=generator)
        target = self.text[chosen.to(device)]
        shape_mask, appearance_mask = self.may_shape[chosen].clone(), self.may_appearance[chosen].clone()
        exemplars = torch.rand(config.batch, generator=generator) < config.exemplar_fraction
        if bool(exemplars.any()):  # an exemplar's look may move both codes
            n = int(exemplars.sum())
            other_shape, other_appearance = model.sample_codes(n, generator)
            with torch.no_grad():
                images = render_views(
                    model, self.views.sample(n, config.resolution, generator), other_shape, other_appearance
                )["rgb"]
                target[exemplars.to(device)] = encoder.encode_image(images)
            shape_mask[exemplars] = appearance_mask[exemplars] = True
        cameras = self.views.sample(config.batch, config.resolution, generator)
        losses = mapper_losses(
            model, encoder, self.mappers, shape, appearance, target, cameras, shape_mask, appearance_mask
        )
        total = (
            config.clip_weight * losses["clip"]
            + config.realism_weight * losses["realism"]
            + config.identity_weight * losses["identity"]
        )
        return {**losses, "total": total}

    def end_step(self, step: int, elapsed: float, losses: dict[str, torch.Tensor] | None) -> float:
        if losses is not None:
            self.history.append({"step": step, **{k: float(v.detach()) for k, v in losses.items() if k != "total"}})
        return self.history[-1]["clip"] if self.history else float("nan")


def train_mappers(
    model, encoder, prompts: list[Prompt], config: MapperConfig, progress: bool = True
) -> tuple[ClipMappers, dict]:
    """Train the two mappers of a clipnerf ``model`` (frozen) against ``encoder`` (frozen) on ``prompts``."""
    if not prompts:
        raise LangfieldError("the mappers need at least one prompt")
    loop = TrainingLoop(
        LoopSettings("mappers", config.steps, seed=config.seed, progress=progress, metric=("clip loss", ""))
    )
    task = MapperTask(model, encoder, prompts, config)
    with model.frozen():
        result = loop.run(task)
    history = task.history
    if not history:
        raise LangfieldError("every mapper step had a non-finite loss; lower --lr")
    window = history[-min(50, len(history)) :]
    info = {
        "steps": config.steps,
        "seconds": round(result.elapsed, 1),
        "prompts": [p.text for p in prompts],
        "clip_loss_first": history[0]["clip"],
        "clip_loss_last50": sum(h["clip"] for h in window) / len(window),
        "skipped_steps": result.skipped_steps,
    }
    task.mappers.info = info
    return task.mappers.eval(), info


def edit_report(
    model,
    encoder,
    before: tuple[torch.Tensor, torch.Tensor],
    after: tuple[torch.Tensor, torch.Tensor],
    target: torch.Tensor,
    views: int = 8,
    resolution: int = 64,
) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """What an edit did, from ``views`` renders around the object (even azimuths, the training cameras' middle
    elevation) before and after (``before``/``after``: (shape, appearance) codes): the mean cosine similarity of the
    renders to the unit embedding ``target``, the silhouette IoU (opacity > 0.5) and the mean colour of the object's
    pixels. Returns the figures and the renders before and after, (V, H, W, 3) each."""
    cameras = ObjectViews.of(model.scene.cameras).ring(views, resolution)
    images, masks, colours, similarity = [], [], [], []
    for shape, appearance in (before, after):
        with torch.no_grad():
            out = render_views(model, cameras, shape.expand(views, -1), appearance.expand(views, -1))
            similarity.append(
                float((encoder.encode_image(out["rgb"]) @ target.reshape(-1).to(out["rgb"].device)).mean())
            )
        mask = out["opacity"] > 0.5
        images.append(out["rgb"])
        masks.append(mask)
        colours.append((out["rgb"] * mask[..., None]).sum((0, 1, 2)) / mask.sum().clamp_min(1))
    report = {
        "similarity_before": similarity[0],
        "similarity_after": similarity[1],
        "silhouette_iou": float((masks[0] & masks[1]).sum() / (masks[0] | masks[1]).sum().clamp_min(1)),
        "mean_colour_before": colours[0].tolist(),
        "mean_colour_after": colours[1].tolist(),
        "mean_colour_change": float((colours[1] - colours[0]).abs().max()),
    }
    return report, images[0], images[1]
