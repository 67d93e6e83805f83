"""One browser tab of the viewer: its controls, its camera and the thread that draws for it.

Drawing is progressive. While the camera moves, frames are drawn at a coarse size chosen from the measured rendering
speed so that they keep up (about ``TARGET_FPS``); once it has rested for ``REST_SECONDS`` the view is drawn at the
full resolution, chunk by chunk, and dropped as soon as the camera moves again. Only the newest camera is ever drawn:
updates that arrive during a frame replace each other.
"""

from __future__ import annotations

import io
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from langfield.errors import one_line
from langfield.export.images import CHANNELS
from langfield.viewer.camera import viewport_camera
from langfield.viewer.panels import panel_for
from langfield.viewer.render import Cancelled

if TYPE_CHECKING:
    from langfield.viewer.server import Viewer

#: coarse frames aim at this rate while the camera moves
TARGET_FPS = 20.0
#: the camera counts as resting after this long without an update; then the full-resolution frame is drawn
REST_SECONDS = 0.15
#: the smallest coarse frame (pixels high)
MIN_HEIGHT = 24
#: while training, the viewer takes at most this share of the time (its frames wait their turn between steps)
TRAINING_SHARE = 0.1


@dataclass
class FrameRecord:
    sent: float  # time.perf_counter() when the frame went to the browser
    final: bool  # full resolution of a resting camera
    width: int
    height: int
    seconds: float  # drawing time (with the model held)
    camera: int  # the camera version it shows


class Tab:
    """A connected browser tab (viser client)."""

    def __init__(self, viewer: "Viewer", client):
        self.viewer = viewer
        self.client = client
        self.frames: deque[FrameRecord] = deque(maxlen=1000)
        self.last_final: np.ndarray | None = None
        self.errors: list[str] = []
        self._camera_version = 0
        self._content_version = 0
        self._moved_at = 0.0
        self._not_before = 0.0
        self._rays_per_second = 50_000.0
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._build()
        client.camera.on_update(self._camera_moved)
        self._thread = threading.Thread(target=self._run, name=f"viewer-tab-{client.client_id}", daemon=True)
        self._thread.start()

    # -- controls ------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        gui = self.client.gui
        viewer = self.viewer
        self.status = gui.add_markdown(viewer.status_text())
        with gui.add_folder("View"):
            self.channel = gui.add_dropdown("Output", options=CHANNELS, initial_value="rgb")
            self.resolution = gui.add_slider(
                "Resolution", min=32, max=1600, step=8, initial_value=viewer.default_height, hint="Pixels high"
            )
            cameras = gui.add_checkbox("Training cameras", initial_value=True)
            box = gui.add_checkbox("Scene box", initial_value=True)
            self.save = gui.add_button("Save view as PNG")
            self.speed = gui.add_markdown("")
        self.channel.on_update(self.action(self.rerender))
        self.resolution.on_update(self.action(self.rerender))
        self.save.on_click(self.action(self.save_view))
        cameras.on_update(self.action(lambda: viewer.show_cameras(cameras.value)))
        box.on_update(self.action(lambda: viewer.show_box(box.value)))
        self.panel = panel_for(viewer.method)(self)
        self.panel.build(gui)

    def action(self, job: Callable[[], object]) -> Callable[[object], None]:
        """A widget's callback running ``job``: a failure is a message in the page and one console line, and the
        viewer goes on."""

        def callback(_event: object) -> None:
            try:
                job()
            except Exception as error:
                message = one_line(error, 200)
                print(f"viewer: {message}", flush=True)
                self.notify("Something went wrong", message, error=True)

        return callback

    def notify(self, title: str, body: str, error: bool = False) -> None:
        try:
            self.client.add_notification(title, body, auto_close_seconds=6.0, color="red" if error else None)
        except Exception:  # the tab has gone
            pass
        if error:
            self.errors.append(f"{title}: {body}")

    def rerender(self) -> None:
        """Draw again (a control changed)."""
        self._content_version += 1
        self._wake.set()

    def _camera_moved(self, _camera) -> None:
        self._moved_at = time.perf_counter()
        self._camera_version += 1
        self._wake.set()

    def save_view(self) -> None:
        image = self.last_final
        if image is None:
            self.notify("Nothing to save yet", "Wait for the view to be drawn.", error=True)
            return
        from PIL import Image

        path = self.viewer.save_view(image)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        try:
            self.client.send_file_download(path.name, buffer.getvalue())
        except Exception:
            pass
        self.notify("Saved", str(path))

    def close(self, wait: float = 0.0) -> None:
        """Stop drawing for this tab (``wait``: seconds to wait for a frame being drawn to end)."""
        self._closed.set()
        self._wake.set()
        if wait > 0 and self._thread is not threading.current_thread():
            self._thread.join(wait)

    # -- drawing -------------------------------------------------------------------------------------------------
    def coarse_height(self, aspect: float, full: int) -> int:
        pixels = self._rays_per_second / TARGET_FPS
        return int(min(full, max(MIN_HEIGHT, math.sqrt(pixels / max(aspect, 1e-3)))))

    def wait_rest(self) -> None:
        """Wake up when the camera will count as resting (a coarse frame is showing)."""
        delay = self._moved_at + REST_SECONDS - time.perf_counter()
        if delay > 0:
            self._wake.wait(delay)

    def _run(self) -> None:
        drawn: tuple | None = None
        while not self._closed.is_set():
            self._wake.wait(0.1)
            self._wake.clear()
            viewer = self.viewer
            if viewer.model is None or self._closed.is_set():
                continue
            now = time.perf_counter()
            if now < self._not_before:
                self._wake.wait(self._not_before - now)
                continue
            key = (self._camera_version, self._content_version, viewer.model_version)
            resting = now - self._moved_at >= REST_SECONDS
            if drawn == (*key, True) or (drawn == (*key, False) and not resting):
                if not resting:
                    self.wait_rest()
                    self._wake.set()
                continue
            try:
                final = self._draw(key[0], resting)
            except Cancelled:
                self._wake.set()
                continue
            except Exception as error:  # one line on the console and in the page; the viewer goes on
                message = one_line(error, 200)
                print(f"viewer: drawing failed: {message}", flush=True)
                self.notify("Drawing failed", message, error=True)
                final = True
            drawn = (*key, final)
            if not final:
                self._wake.set()

    def _draw(self, camera_version: int, resting: bool) -> bool:
        camera = self.client.camera
        aspect = float(camera.aspect)
        full = int(self.resolution.value)
        coarse = self.coarse_height(aspect, full)
        final = resting or coarse >= full
        height = full if final else coarse
        view = viewport_camera(camera.wxyz, camera.position, float(camera.fov), aspect, height)
        viewer = self.viewer

        def cancelled() -> bool:
            return self._camera_version != camera_version or self._closed.is_set()

        with viewer.hold():
            model = viewer.model
            started = time.perf_counter()
            image = self.panel.draw(model, view, str(self.channel.value), cancelled, final)
            seconds = time.perf_counter() - started
        if cancelled():
            raise Cancelled
        rate = view.width * view.height / max(seconds, 1e-4)
        self._rays_per_second = 0.5 * self._rays_per_second + 0.5 * rate if self.frames else rate
        sending = time.perf_counter()
        self.client.scene.set_background_image(image, format="jpeg", jpeg_quality=90 if final else 60)
        if viewer.training:  # drawing, encoding and sending the frame count in the viewer's share
            spent = seconds + time.perf_counter() - sending
            self._not_before = time.perf_counter() + spent * (1.0 / TRAINING_SHARE - 1.0)
        self.frames.append(FrameRecord(time.perf_counter(), final, view.width, view.height, seconds, camera_version))
        if final:
            self.last_final = image
            self.speed.content = (
                f"{view.width}×{view.height} in {seconds:.2f} s · {self._rays_per_second / 1000:.0f}k rays/s"
            )
        return final
