"""Each method's controls in the viewer and how a view is drawn with them.

A panel lives in one browser tab: it adds its widgets to that tab's control panel and draws the tab's frames. The
default draws the chosen output channel; **lerf** overlays text queries' relevancy (the same as
``langfield query``), **dreamfusion** chooses the shading, **clipnerf** chooses an object and edits it with a prompt
or an exemplar image through the run's mappers. ``draw`` runs with the model held (no training step in between).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from langfield.cameras import Cameras
from langfield.errors import LangfieldError
from langfield.export.images import channel_image, to_uint8
from langfield.viewer.render import render_view

if TYPE_CHECKING:
    from langfield.viewer.session import Tab


class Panel:
    """Output channels of any radiance field (nerf, vanilla-nerf, dietnerf, and the base of the others)."""

    def __init__(self, tab: "Tab"):
        self.tab = tab

    def build(self, gui) -> None:
        """Add the method's widgets to the tab's control panel (``gui``: viser's per-client GUI API)."""

    def draw(self, model, camera: Cameras, channel: str, cancelled: Callable[[], bool], final: bool) -> np.ndarray:
        """The picture of ``camera`` (uint8 H×W×3); ``final``: the full-resolution frame of a resting camera."""
        scene = model.scene
        return to_uint8(channel_image(render_view(model, camera, cancelled), channel, scene.near, scene.far))


class LerfPanel(Panel):
    """Text queries: each one's relevancy heat-map over the current view and its chosen scale."""

    def __init__(self, tab: "Tab"):
        super().__init__(tab)
        self.queries: list[str] = []
        self._engine = None

    def build(self, gui) -> None:
        with gui.add_folder("Language queries"):
            self.text = gui.add_text("Query", initial_value="", hint="Free text, e.g. 'the red mug'")
            add = gui.add_button("Add query", hint="Show this query's relevancy over the view")
            self.shown = gui.add_dropdown("Show", options=("none",), initial_value="none")
            clear = gui.add_button("Clear queries")
            self.table = gui.add_markdown("No query yet: type one and press *Add query*.")
        add.on_click(self.tab.action(lambda: self.add(self.text.value)))
        clear.on_click(self.tab.action(self.clear))
        self.shown.on_update(self.tab.action(self.tab.rerender))

    def engine(self, model):
        from langfield.methods.lerf.query import LanguageQuery

        if self._engine is None or self._engine.model is not model:
            self._engine = LanguageQuery(model)
        return self._engine

    def add(self, text: str) -> None:
        text = text.strip()
        model = self.tab.viewer.model
        if not text:
            self.tab.notify("Type a query first", "The query box is empty.", error=True)
            return
        if model is None:
            self.tab.notify("Nothing is loaded yet", "Queries work once the model is built.", error=True)
            return
        if text not in self.queries:
            with self.tab.viewer.hold():
                self.engine(model).text([text])  # encodes it once: a bad query fails here, in the page
            self.queries.append(text)
        self.shown.options = ("none", *self.queries)
        self.shown.value = text
        self.tab.rerender()

    def clear(self) -> None:
        self.queries = []
        self.shown.options = ("none",)
        self.shown.value = "none"
        self.table.content = "No query yet: type one and press *Add query*."
        self.tab.rerender()

    def draw(self, model, camera, channel, cancelled, final):
        from langfield.methods.lerf.heatmaps import overlay

        if not self.queries or self.shown.value not in self.queries:
            return super().draw(model, camera, channel, cancelled, final)
        answer = self.engine(model).view(self.queries, 0, camera)
        q = self.queries.index(self.shown.value)
        if final:
            rows = [
                f"| {'**' + t + '**' if i == q else t} | {float(answer.fractions[i]):.2f} | "
                f"{float(answer.relevancy[i].max()):.3f} |"
                for i, t in enumerate(answer.texts)
            ]
            self.table.content = "\n".join(["| query | scale | peak |", "| --- | --- | --- |", *rows])
        return to_uint8(overlay(answer.rgb, answer.relevancy[q]))


class DreamFusionPanel(Panel):
    """The prompt, and the shading of the render (albedo, textureless, lambertian)."""

    def build(self, gui) -> None:
        config = self.tab.viewer.run_config
        prompt = getattr(getattr(config, "model", None), "prompt", "") or "(none)"
        with gui.add_folder("Text to 3D"):
            gui.add_markdown(f"**Prompt:** {prompt}")
            self.shading = gui.add_dropdown(
                "Shading", options=("lambertian", "albedo", "textureless"), initial_value="lambertian"
            )
        self.shading.on_update(self.tab.action(self.tab.rerender))

    def draw(self, model, camera, channel, cancelled, final):
        previous = model.eval_shading
        model.eval_shading = self.shading.value
        try:
            return super().draw(model, camera, channel, cancelled, final)
        finally:
            model.eval_shading = previous


class ClipNerfPanel(Panel):
    """A training object, and an edit of it towards a prompt or an exemplar image, applied at once by the mappers."""

    def __init__(self, tab: "Tab"):
        super().__init__(tab)
        self.codes: tuple[torch.Tensor, torch.Tensor] | None = None
        self._mappers = None

    def build(self, gui) -> None:
        model = self.tab.viewer.model
        count = int(model.objects) if model is not None else 1
        with gui.add_folder("Edit (CLIP-NeRF)"):
            self.object = gui.add_dropdown("Object", options=tuple(str(i) for i in range(count)), initial_value="0")
            self.target = gui.add_text("Edit", initial_value="", hint="A prompt ('a red chair') or an image path")
            self.part = gui.add_dropdown("Part", options=("both", "shape", "appearance"), initial_value="both")
            self.strength = gui.add_slider("Strength", min=0.0, max=2.0, step=0.1, initial_value=1.0)
            apply = gui.add_button("Apply edit")
            reset = gui.add_button("Reset")
            self.status = gui.add_markdown("Unedited training object.")
        self.object.on_update(self.tab.action(self.reset))
        apply.on_click(self.tab.action(lambda: self.apply(self.target.value)))
        reset.on_click(self.tab.action(self.reset))

    def reset(self) -> None:
        self.codes = None
        self.status.content = f"Unedited training object {self.object.value}."
        self.tab.rerender()

    def apply(self, target: str) -> None:
        target = target.strip()
        viewer = self.tab.viewer
        if not target:
            self.tab.notify("Nothing to edit towards", "Type a prompt or the path of an image.", error=True)
            return
        if viewer.model is None or viewer.run is None:
            self.tab.notify("Nothing is loaded yet", "Edits work once the model is built.", error=True)
            return
        from langfield.apps.editing import load_mappers
        from langfield.encoders import load_encoder
        from langfield.export.images import read_image

        try:
            if self._mappers is None:
                mapper, encoder_name = load_mappers(viewer.run)
                self._mappers = (mapper, load_encoder(encoder_name, viewer.model.background.device))
            mapper, encoder = self._mappers
            started = time.perf_counter()
            with viewer.hold(), torch.no_grad():
                model = viewer.model
                index = int(self.object.value)
                shape, appearance = model.shape_codes[index].detach(), model.appearance_codes[index].detach()
                if Path(target).expanduser().is_file():
                    image = read_image(Path(target).expanduser())[..., :3].to(model.background.device)
                    embedding = encoder.encode_image(image)[0]
                    what = f"the look of {Path(target).name}"
                else:
                    embedding = encoder.encode_text(target)[0]
                    what = repr(target)
                self.codes = mapper.edit(embedding, shape, appearance, self.part.value, float(self.strength.value))
        except LangfieldError as error:
            self.tab.notify("Edit failed", str(error), error=True)
            return
        seconds = time.perf_counter() - started
        self.status.content = f"Object {self.object.value} edited towards {what} in {seconds * 1000:.0f} ms."
        self.tab.rerender()

    def draw(self, model, camera, channel, cancelled, final):
        if self.codes is not None:
            model.use_codes(*self.codes)
        else:
            model.select(int(self.object.value))
        return super().draw(model, camera, channel, cancelled, final)


PANELS: dict[str, type[Panel]] = {"lerf": LerfPanel, "dreamfusion": DreamFusionPanel, "clipnerf": ClipNerfPanel}


def panel_for(method: str) -> type[Panel]:
    return PANELS.get(method, Panel)
