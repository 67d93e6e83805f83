"""Prompts for score distillation: validation, view-dependent suffixes and the text conditions of a prompt.

DreamFusion appends the view to the prompt ("…, front view" / side / back / overhead) chosen from the camera's
azimuth relative to the object's front (0°: looking at the front) and its elevation, so that the prior does not
paint a face on every side (the Janus problem). The embedded prior was trained with the same suffixes, made by
:func:`view_name` and :func:`view_prompt`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch

from langfield.checks import ELEVATION, between
from langfield.errors import LangfieldError
from langfield.guidance.prior import DiffusionPrior, TextCondition

VIEWS = ("front", "side", "back", "overhead")


@dataclass
class ViewPromptConfig:
    enabled: bool = True
    """Append the view to the prompt by the camera's azimuth and elevation."""
    front_angle: Annotated[float, between(0, 180)] = 45.0
    """Views within this many degrees of azimuth 0 are "front"."""
    back_angle: Annotated[float, between(0, 180)] = 45.0
    """Views within this many degrees of azimuth 180 are "back"; the rest are "side"."""
    overhead_elevation: Annotated[float, ELEVATION] = 60.0
    """Views above this elevation (degrees) are "overhead", whatever the azimuth."""
    template: str = "{prompt}, {view} view"


def check_prompt(prompt: str, what: str = "prompt") -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise LangfieldError(f"the {what} must be non-empty text, got {prompt!r}")
    return " ".join(prompt.split())


def view_name(azimuth: float, elevation: float, config: ViewPromptConfig = ViewPromptConfig()) -> str:
    """The view of a camera at ``azimuth`` (degrees from the object's front, any range) and ``elevation``."""
    if elevation > config.overhead_elevation:
        return "overhead"
    azimuth = (azimuth + 180.0) % 360.0 - 180.0
    if abs(azimuth) <= config.front_angle:
        return "front"
    if abs(azimuth) >= 180.0 - config.back_angle:
        return "back"
    return "side"


def view_prompt(prompt: str, view: str | None, config: ViewPromptConfig = ViewPromptConfig()) -> str:
    if view is None or not config.enabled:
        return prompt
    return config.template.format(prompt=prompt, view=view)


class PromptProcessor:
    """The conditions of one prompt for a prior: one per view (or one without suffix) and the negative prompt
    (empty: the unconditional one), computed once."""

    def __init__(
        self, prior: DiffusionPrior, prompt: str, negative: str = "", views: ViewPromptConfig = ViewPromptConfig()
    ):
        self.prompt = check_prompt(prompt)
        self.views = views
        names = VIEWS if views.enabled else (None,)
        self.texts = {name: view_prompt(self.prompt, name, views) for name in names}
        conditions = prior.text_condition(list(self.texts.values()))
        self._conditions = {name: conditions.select([i]) for i, name in enumerate(names)}
        self._negative = prior.text_condition([" ".join(negative.split())])

    def condition(self, azimuth: torch.Tensor, elevation: torch.Tensor) -> tuple[TextCondition, list[str]]:
        """Conditions for cameras at ``azimuth`` / ``elevation`` (degrees), and the texts used."""
        names = [
            view_name(float(a), float(e), self.views) if self.views.enabled else None
            for a, e in zip(azimuth, elevation)
        ]
        return TextCondition.cat([self._conditions[n] for n in names]), [self.texts[n] for n in names]

    def negative(self, count: int) -> TextCondition:
        return TextCondition.cat([self._negative] * count)
