"""The web viewer: a viser server showing a run's field at the browser's camera, its training cameras and scene box,
with each method's controls (:mod:`langfield.viewer.panels`).

    viewer = Viewer(port=7007)          # serving at once; prints its URL
    viewer.show(load_run("runs/lego"))  # or, while training: the trainer calls viewer.attach(...)
    viewer.serve_forever()              # until Ctrl-C

It also watches training (``langfield train ... --viewer``): the trainer runs each step inside :meth:`hold`, so a
frame is drawn between two steps, never during one, and the viewer's share of the time stays small
(:data:`~langfield.viewer.session.TRAINING_SHARE`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from langfield.cameras import scene_up
from langfield.errors import LangfieldError
from langfield.run import Run
from langfield.train.loop import Observer
from langfield.ui import console
from langfield.viewer.camera import vertical_fov, viewer_pose

#: frustum images are at most this many pixels on their longer side
THUMBNAIL = 64
#: while training, the status line (step, elapsed time, loss) is updated this often
STATUS_SECONDS = 1.0
#: while training, a camera at rest is redrawn this often (seconds) to show progress, by default: each redraw costs
#: the browser about as much CPU as the frame costs the server (a software-WebGL page redraws for ~0.25 s), and on
#: two cores that comes out of the training's time
REFRESH_SECONDS = 5.0


class FairLock:
    """A lock taken in turns: a thread waiting for it gets it before the holder can take it again (a training loop
    that re-takes it at every step would otherwise starve the viewer)."""

    def __init__(self) -> None:
        self._turnstile = threading.Lock()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._turnstile:
            self._lock.acquire()
        try:
            yield
        finally:
            self._lock.release()


def _edges(aabb: torch.Tensor) -> np.ndarray:
    """The 12 edges of an axis-aligned box as (12, 2, 3) segment end points."""
    lo, hi = aabb[0].double().numpy(), aabb[1].double().numpy()
    corners = np.array([[(hi if (i >> k) & 1 else lo)[k] for k in range(3)] for i in range(8)])
    pairs = [(i, i | (1 << k)) for i in range(8) for k in range(3) if not (i >> k) & 1]
    return np.stack([corners[[a, b]] for a, b in pairs])


class Viewer(Observer):
    """A viser server on ``host:port`` (the next free port when that one is taken, which it says)."""

    def __init__(
        self, port: int = 7007, host: str = "127.0.0.1", label: str = "langfield", refresh: float = REFRESH_SECONDS
    ):
        import viser

        # a connection that is not a browser's (a port probe) would print a traceback from the websocket server
        logging.getLogger("websockets").setLevel(logging.CRITICAL)
        with contextlib.redirect_stdout(io.StringIO()):  # viser's own banner: the commands print the URL
            self.server = viser.ViserServer(host=host, port=port, label=label, verbose=False)
        # nothing in the scene is lit (the field arrives as an image): viser's default shadow maps would only make the
        # browser draw the frustums three more times per frame (~20 % of an idle software-WebGL tab's CPU, measured)
        self.server.scene.configure_default_lights(enabled=True, cast_shadow=False)
        self.port = self.server.get_port()
        self.url = f"http://{'localhost' if host == '0.0.0.0' else host}:{self.port}"
        if self.port != port:
            console.print(f"port {port} is in use; the viewer uses port {self.port} instead")
        self._hold = FairLock()
        self.model: Any = None
        self.run: Run | None = None
        self.run_config: Any = None
        self.method = ""
        self.default_height = 256
        self.model_version = 0
        self.training = False
        self.views_folder = Path.cwd() / "views"
        self.tabs: dict[int, Any] = {}
        self._closed_tabs: list[Any] = []  # disconnected, perhaps still ending a frame (joined by stop)
        self.frustums: list[Any] = []
        self.box: Any = None
        self._status = "loading…"
        self._step = 0
        self.refresh = refresh
        self._last_status = 0.0
        self._last_refresh = 0.0
        self._tabs_lock = threading.Lock()
        self.server.on_client_connect(self._connect)
        self.server.on_client_disconnect(self._disconnect)

    def hold(self) -> contextlib.AbstractContextManager[None]:
        """The model, held: no training step and no other tab's frame runs meanwhile."""
        return self._hold()

    # -- what is shown -------------------------------------------------------------------------------------------
    def show(self, run: Run, dataset=None, status: str | None = None) -> None:
        """Show ``run``'s model (its scene box, its training cameras, with their images when ``dataset`` is given
        or the run's dataset can still be read)."""
        scene = run.scene
        cameras = scene.cameras
        self.run, self.run_config, self.method = run, run.config, run.method.name
        self.default_height = int(min(max(cameras.height, 64), 1024)) // 8 * 8
        if run.path.is_dir():
            self.views_folder = run.path / "views"
        if dataset is None:
            dataset = _dataset_of(run)
        self._draw_scene(run, dataset)
        with self.hold():
            self.model = run.model
            self.model_version += 1
        for tab in self._all_tabs():  # a tab opened before the model was there (while training loads its data)
            tab.resolution.value = self.default_height
        self._set_status(status or f"**{self.method}** · {run.path} · step {run.step}")

    def _draw_scene(self, run: Run, dataset) -> None:
        scene, cameras = run.scene, run.scene.cameras
        aabb = getattr(run.model, "aabb", scene.aabb).detach().float().cpu()
        centre = aabb.mean(dim=0)
        up = scene_up(cameras).float()
        distance = float((cameras.origins.float() - centre).norm(dim=-1).mean())
        self.server.scene.set_up_direction(tuple(up.tolist()))
        self.box = self.server.scene.add_line_segments(
            "/scene_box",
            points=_edges(aabb).astype(np.float32),
            colors=(255, 170, 0),
            thickness=2.0,
            thickness_units="screen",
        )
        images = None
        if dataset is not None and len(dataset.train_indices) == len(cameras):
            step = max(1, max(dataset.width, dataset.height) // THUMBNAIL)
            images = [dataset.rgb(i)[::step, ::step] for i in dataset.train_indices]
        fov, aspect = vertical_fov(cameras), cameras.width / cameras.height
        self.frustums = []
        for i in range(len(cameras)):
            wxyz, position = viewer_pose(cameras.c2w[i])
            image = None if images is None else (images[i].clamp(0, 1) * 255).round().byte().numpy()
            frustum = self.server.scene.add_camera_frustum(
                f"/cameras/{i:04d}",
                fov=fov,
                aspect=aspect,
                scale=0.04 * distance,
                thickness=1.5,
                thickness_units="screen",
                color=(90, 90, 200),
                image=image,
                wxyz=wxyz,
                position=position,
            )
            self.frustums.append(frustum)
        # the first training camera's view, upright, from a little further back (outside its own frustum)
        start = self.server.initial_camera
        start.position = tuple((centre + 1.15 * (cameras.origins[0].float() - centre)).double().tolist())
        start.look_at = tuple(centre.double().tolist())
        start.up = tuple(up.double().tolist())
        start.fov = fov

    def show_cameras(self, visible: bool) -> None:
        for frustum in self.frustums:
            frustum.visible = visible

    def show_box(self, visible: bool) -> None:
        if self.box is not None:
            self.box.visible = visible

    def status_text(self) -> str:
        return self._status

    def save_view(self, image: np.ndarray) -> Path:
        """Write ``image`` as the next free ``view_NNNN.png`` of the views folder (never over a file)."""
        from PIL import Image

        from langfield.atomic import write_image

        self.views_folder.mkdir(parents=True, exist_ok=True)
        taken = [int(p.stem[5:]) for p in self.views_folder.glob("view_*.png") if p.stem[5:].isdigit()]
        number = 1 + max(taken, default=0)
        path = self.views_folder / f"view_{number:04d}.png"
        write_image(path, Image.fromarray(image))
        return path

    # -- tabs ----------------------------------------------------------------------------------------------------
    def _connect(self, client) -> None:
        from langfield.viewer.session import Tab

        try:
            tab = Tab(self, client)
        except Exception as error:  # a tab that cannot be set up must not take the server down
            print(f"viewer: a browser tab could not be set up: {error}", flush=True)
            return
        with self._tabs_lock:
            self.tabs[client.client_id] = tab

    def _disconnect(self, client) -> None:
        with self._tabs_lock:
            tab = self.tabs.pop(client.client_id, None)
        if tab is not None:
            tab.close()
            with self._tabs_lock:
                self._closed_tabs.append(tab)

    def _all_tabs(self) -> list:
        with self._tabs_lock:
            return list(self.tabs.values())

    def wait_for_tab(self, timeout: float = 30.0):
        """The first tab that connects (for tests and benchmarks)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            tabs = self._all_tabs()
            if tabs:
                return tabs[0]
            time.sleep(0.05)
        raise LangfieldError(f"no browser connected to {self.url} within {timeout:.0f} s")

    # -- watching training (the trainer's observer: langfield.train.loop.Observer) -------------------------------
    def attach(self, output: Path, spec, config, model, dataset) -> None:
        self.training = True
        self._step = 0
        run = Run(Path(output), spec, config, model, model.scene, 0)
        self.show(run, dataset, status=f"**{spec.name}** · training {output}")

    def stepped(self, step: int, elapsed: float, value: float, metric: tuple[str, str]) -> None:
        self._step = step
        now = time.perf_counter()
        if now - self._last_status >= STATUS_SECONDS:
            self._last_status = now
            name, unit = metric
            shown = f" · {name} {value:.{2 if unit else 4}f}{unit}" if math.isfinite(value) else ""  # as the bar has it
            self._set_status(f"**{self.method}** · training · step {step} · {elapsed:.0f} s{shown}")
        if now - self._last_refresh >= self.refresh:
            self._last_refresh = now
            self.model_version += 1  # the tabs draw again (each within its share of the time)

    def finished(self) -> None:
        self.training = False
        self._set_status(f"**{self.method}** · trained for {self._step} steps · {self.run.path if self.run else ''}")
        self.model_version += 1

    def _set_status(self, text: str) -> None:
        """The status line of every tab (text only: the view is not drawn again for it)."""
        self._status = text
        for tab in self._all_tabs():
            tab.status.content = text

    # -- life ----------------------------------------------------------------------------------------------------
    def serve_forever(self) -> None:
        """Serve until Ctrl-C."""
        try:
            while True:
                time.sleep(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop the server; frames being drawn end first (a thread left inside torch aborts the interpreter's exit)."""
        with self._tabs_lock:
            tabs = list(self.tabs.values()) + self._closed_tabs
        for tab in tabs:
            tab.close(wait=10.0)
        with contextlib.redirect_stdout(io.StringIO()):
            self.server.stop()


def _dataset_of(run: Run):
    """The run's training images when its dataset can still be read (frustum pictures); None otherwise."""
    data = getattr(run.config, "data", None)
    if data is None or not Path(getattr(data, "data", "")).exists():
        return None
    from langfield.data import load_dataset

    try:
        return load_dataset(data)
    except (LangfieldError, OSError) as error:
        console.print(f"the training images are not shown: {error}")
        return None
