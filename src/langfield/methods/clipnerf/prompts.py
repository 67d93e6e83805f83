"""The prompt library the mappers train on: what the procedural world has words for, said of one category —
colours and materials (appearance edits) and sizes (shape edits), in the world's *training* wordings only, so that
edits with the evaluation wordings ("a crimson chair") measure generalisation.

Every prompt says which codes it may move: a colour word asks for an appearance edit, a size word for a shape edit
("a small red chair": both). The mappers learn to leave the other code alone for a prompt that says nothing of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from langfield.errors import LangfieldError
from langfield.world.vocabulary import COLORS, KINDS, MATERIALS, SIZES


@dataclass(frozen=True)
class Prompt:
    text: str
    shape: bool = True
    """The prompt may move the shape code."""
    appearance: bool = True
    """The prompt may move the appearance code."""


def prompt_library(category: str) -> list[Prompt]:
    if category not in KINDS:
        raise LangfieldError(f"no words for category '{category}' (known: {', '.join(KINDS)})")
    prompts: list[Prompt] = []
    sizes = [size for _, words, _ in SIZES.values() for size in words]
    materials = [material for words, _ in MATERIALS.values() for material in words]
    for kind in KINDS[category][0]:
        for _, colours, _ in COLORS.values():
            for colour in colours:
                prompts.append(Prompt(f"a {colour} {kind}", shape=False))
                prompts += [Prompt(f"a {material} {colour} {kind}", shape=False) for material in materials]
                prompts += [Prompt(f"a {size} {colour} {kind}") for size in sizes]
        prompts += [Prompt(f"a {size} {kind}", appearance=False) for size in sizes]
    return list(dict.fromkeys(prompts))


def read_prompts(path: Path) -> list[Prompt]:
    """One prompt per non-empty line of a text file; a line may start with ``shape:`` or ``appearance:`` to let it
    move only that code (otherwise it may move both)."""
    path = Path(path)
    try:
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise LangfieldError(f"{path}: cannot read prompts ({error.__class__.__name__})") from None
    prompts = []
    for line in lines:
        part, _, rest = line.partition(":")
        if part.strip() in ("shape", "appearance") and rest.strip():
            prompts.append(Prompt(rest.strip(), shape=part.strip() == "shape", appearance=part.strip() == "appearance"))
        else:
            prompts.append(Prompt(line))
    if not prompts:
        raise LangfieldError(f"{path}: no prompts (one per line)")
    return prompts


def dataset_category(data: Path) -> str | None:
    """The category a `langfield world category` dataset shows (its objects.json), or None."""
    file = Path(data) / "objects.json"
    try:
        return str(json.loads(file.read_text())["category"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
