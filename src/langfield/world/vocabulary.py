"""Names, colours and the caption templates of the procedural world.

Every attribute has *training* wordings (used to train the embedded models) and *evaluation* wordings (synonyms
and sentence frames never used in training), so that language understanding can be measured honestly:

- colours: 12 named colours; e.g. red → train "red", "scarlet"; eval "crimson".
- kinds: 6 primitives (sphere, cube, cylinder, cone, torus, capsule) and 3 composite everyday objects
  (chair, table, mug); e.g. cube → train "cube", "box"; eval "block".
- materials: matte / glossy; sizes: small / medium / large (medium has no word).
- sentence frames: ``TRAIN_TEMPLATES`` and ``EVAL_TEMPLATES`` are disjoint.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

# name: (linear-ish sRGB albedo, training synonyms, evaluation synonyms)
COLORS: dict[str, tuple[tuple[float, float, float], tuple[str, ...], tuple[str, ...]]] = {
    "red": ((0.80, 0.08, 0.08), ("red", "scarlet"), ("crimson",)),
    "orange": ((0.95, 0.45, 0.05), ("orange",), ("tangerine",)),
    "yellow": ((0.95, 0.85, 0.10), ("yellow",), ("lemon yellow",)),
    "green": ((0.10, 0.65, 0.15), ("green",), ("emerald",)),
    "blue": ((0.10, 0.25, 0.85), ("blue",), ("navy blue",)),
    "cyan": ((0.10, 0.75, 0.80), ("cyan", "turquoise"), ("aqua",)),
    "purple": ((0.50, 0.15, 0.70), ("purple", "violet"), ("lavender purple",)),
    "pink": ((0.95, 0.50, 0.70), ("pink",), ("rose pink",)),
    "brown": ((0.45, 0.27, 0.10), ("brown",), ("chocolate brown",)),
    "white": ((0.92, 0.92, 0.92), ("white",), ("snow white",)),
    "black": ((0.05, 0.05, 0.05), ("black",), ("jet black",)),
    "grey": ((0.50, 0.50, 0.50), ("grey", "gray"), ("silver",)),
}

# name: (training synonyms, evaluation synonyms)
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sphere": (("sphere", "ball"), ("orb",)),
    "cube": (("cube", "box"), ("block",)),
    "cylinder": (("cylinder", "tube"), ("drum",)),
    "cone": (("cone",), ("conical object",)),
    "torus": (("torus", "ring"), ("donut",)),
    "capsule": (("capsule", "pill"), ("lozenge",)),
    "chair": (("chair",), ("seat with a backrest",)),
    "table": (("table",), ("small desk",)),
    "mug": (("mug", "cup"), ("coffee mug",)),
}
PRIMITIVE_KINDS = ("sphere", "cube", "cylinder", "cone", "torus", "capsule")
COMPOSITE_KINDS = ("chair", "table", "mug")

MATERIALS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "matte": (("matte",), ("dull",)),
    "glossy": (("glossy", "shiny"), ("polished",)),
}
SIZES: dict[str, tuple[float, tuple[str, ...], tuple[str, ...]]] = {
    "small": (0.75, ("small",), ("tiny",)),
    "medium": (1.0, (), ()),
    "large": (1.3, ("large", "big"), ("huge",)),
}

TRAIN_TEMPLATES = (
    "a {colour} {kind}",
    "a {size} {colour} {kind}",
    "a {material} {colour} {kind}",
    "the {size} {material} {colour} {kind}",
    "a photo of a {colour} {kind}",
    "a rendering of a {material} {kind} that is {colour}",
)
EVAL_TEMPLATES = (
    "there is a {colour} {kind} here",
    "an image showing the {size} {colour} {kind}",
    "look at this {material} {colour} {kind}",
)


@dataclass(frozen=True)
class Attributes:
    kind: str
    color: str
    material: str
    size: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "color": self.color, "material": self.material, "size": self.size}


def _fill(template: str, colour: str, kind: str, material: str, size: str) -> str:
    text = template.format(colour=colour, kind=kind, material=material, size=size)
    return " ".join(text.split())  # an empty size word leaves a double space


def captions(attributes: Attributes, split: str = "train", limit: int = 12) -> list[str]:
    """Deterministic captions of an object from the wordings of ``split`` (``train`` or ``eval``)."""
    index = 0 if split == "train" else 1
    colour_words = COLORS[attributes.color]
    colours = colour_words[2] if index else colour_words[1]
    kinds = KINDS[attributes.kind][index]
    materials = MATERIALS[attributes.material][index]
    size_words = SIZES[attributes.size]
    sizes = (size_words[2] if index else size_words[1]) or ("",)
    templates = TRAIN_TEMPLATES if split == "train" else EVAL_TEMPLATES
    out: list[str] = []
    for template, colour, kind, material, size in itertools.product(templates, colours, kinds, materials, sizes):
        if "{size}" in template and not size:
            continue
        text = _fill(template, colour, kind, material, size)
        if text not in out:
            out.append(text)
    return out[:limit]


def class_caption(color: str, kind: str) -> str:
    """The canonical ``"a {colour} {kind}"`` label used for zero-shot classification among colour × kind."""
    return f"a {color} {kind}"
