"""Evaluation of generated objects as in the DreamFusion paper: CLIP R-precision of renders.

A render counts as retrieving its prompt when the image encoder ranks the prompt's caption first among all
candidate captions (here every colour × kind of the procedural world, "a {colour} {kind}"). Colour renders use the
run's own shading (albedo lit by a light at the camera); textureless renders (white albedo, "geometry") carry no
colour, so for them the kind of the top caption is what has to be right.

So that no method is graded only by the model it learned from, renders of the kinds that ImageNet also has (mug,
chair, table) are graded by a real ImageNet classifier too (:func:`imagenet_hits`): a render counts when one of
its kind's ImageNet classes is among the classifier's top five.
"""

from __future__ import annotations

import torch

from langfield.cameras import orbit_cameras
from langfield.world.vocabulary import COLORS, KINDS, class_caption

# the ImageNet classes that name each procedural kind (imagenet_classes.txt spellings)
IMAGENET_KINDS: dict[str, tuple[str, ...]] = {
    "mug": ("coffee mug", "cup", "measuring cup", "beer glass", "pitcher"),
    "chair": ("folding chair", "rocking chair", "barber chair", "throne"),
    "table": ("dining table", "desk", "pool table"),
}


def candidate_captions() -> list[tuple[str, str, str]]:
    """(caption, colour, kind) for every colour × kind."""
    return [(class_caption(c, k), c, k) for c in COLORS for k in KINDS]


@torch.no_grad()
def render_views(
    model,
    views: int = 4,
    elevation: float = 20.0,
    radius: float = 2.3,
    fov: float = 40.0,
    resolution: int = 64,
    shading: str = "lambertian",
) -> torch.Tensor:
    """(views, H, W, 3) renders at evenly spaced azimuths from the front."""
    previous = model.eval_shading
    model.eval_shading = shading
    cameras = orbit_cameras(torch.arange(views) * (360.0 / views), torch.tensor(elevation), radius, fov, resolution)
    images = torch.stack([model.render_camera(cameras, i, outputs=("rgb",))["rgb"] for i in range(views)])
    model.eval_shading = previous
    return images.cpu()


@torch.no_grad()
def r_precision(images: torch.Tensor, color: str, kind: str, encoder, geometry: bool = False) -> list[bool]:
    """Per image: is the top caption among all colour × kind captions the right one (``geometry``: the right kind)?"""
    candidates = candidate_captions()
    probabilities = encoder.classify(images, [c[0] for c in candidates])
    top = probabilities.argmax(dim=1).tolist()
    if geometry:
        return [candidates[i][2] == kind for i in top]
    return [candidates[i][1:] == (color, kind) for i in top]


@torch.no_grad()
def imagenet_hits(images: torch.Tensor, kind: str, classifier, k: int = 5) -> list[bool]:
    """Per image: is one of ``kind``'s ImageNet classes among the ``k`` most probable of ``classifier``?

    ``classifier`` is an encoder with ``top_classes`` (``load_encoder("efficientnet-lite0")``); ``kind`` one of
    :data:`IMAGENET_KINDS`.
    """
    if kind not in IMAGENET_KINDS:
        raise ValueError(f"no ImageNet classes for kind {kind!r}; known: {', '.join(IMAGENET_KINDS)}")
    wanted = set(IMAGENET_KINDS[kind])
    return [any(name in wanted for name, _ in row) for row in classifier.top_classes(images, k=k)]
