"""The web viewer: camera conversions, progressive drawing, errors, and the page in a real browser (headless
Chromium through playwright, WebGL in software): it loads, shows the scene, follows the mouse and answers a query."""

import io
import math
import signal
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import assert_clean_error, langfield, signal_state
from langfield.viewer.browser import find_chromium
from langfield.viewer.camera import matrix_to_quaternion, quaternion_to_matrix, viewer_pose, viewport_camera

needs_browser = pytest.mark.skipif(
    find_chromium() is None, reason="no Chromium (Debian: apt-get install chromium; .ci/run installs it)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_quaternions_round_trip_every_kind_of_rotation():
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        q = torch.randn(4, generator=generator).double().numpy()
        q = q / np.linalg.norm(q) * (1 if q[0] >= 0 else -1)
        m = quaternion_to_matrix(q)
        assert np.allclose(m @ m.T, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(m), 1)
        assert np.allclose(matrix_to_quaternion(m), q, atol=1e-7)
    flip = np.diag([1.0, -1.0, -1.0])  # 180° about x: the trace-negative branch
    assert np.allclose(quaternion_to_matrix(matrix_to_quaternion(flip)), flip)


def test_the_browser_camera_becomes_the_same_langfield_camera():
    from langfield.cameras import look_at

    eye, target = torch.tensor([[2.0, -3.0, 1.5]]), torch.tensor([[0.2, 0.1, 0.0]])
    c2w = look_at(eye, target, torch.tensor([0.0, 0.0, 1.0]))[0].float()
    wxyz, position = viewer_pose(c2w)
    camera = viewport_camera(wxyz, position, fov=math.radians(40), aspect=1.5, height=60)
    assert (camera.width, camera.height) == (90, 60)
    assert torch.allclose(camera.c2w[0], c2w, atol=1e-5)
    # the centre pixel's ray points at the target; the vertical field of view is the one asked for
    origins, directions = camera.generate_rays(torch.tensor([0]), torch.tensor([45.0]), torch.tensor([30.0]))
    towards = (target - eye) / (target - eye).norm()
    assert torch.allclose(directions, towards, atol=1e-5)
    _, top = camera.generate_rays(torch.tensor([0]), torch.tensor([45.0]), torch.tensor([0.0]))
    assert math.isclose(math.degrees(float(torch.acos((top * towards).sum()))), 20.0, abs_tol=1e-3)


def test_a_query_while_nothing_is_loaded_is_a_message_in_the_page():
    from langfield.viewer.panels import ClipNerfPanel, LerfPanel

    said = []
    tab = types.SimpleNamespace(
        viewer=types.SimpleNamespace(model=None, run=None), notify=lambda *a, **k: said.append((a, k))
    )
    LerfPanel(tab).add("a red sphere")  # type: ignore[arg-type]
    LerfPanel(tab).add("   ")  # type: ignore[arg-type]
    ClipNerfPanel(tab).apply("a red chair")  # type: ignore[arg-type]
    assert [a[0] for a, _ in said] == ["Nothing is loaded yet", "Type a query first", "Nothing is loaded yet"]
    assert all(k["error"] for _, k in said)


def test_view_errors(tmp_path):
    assert_clean_error(langfield("view", tmp_path / "missing"), "not a langfield run")
    assert_clean_error(langfield("view", tmp_path, "--port", "0"), "--port")


def test_a_port_in_use_gives_the_next_free_one(capsys):
    from langfield.viewer import Viewer

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        viewer = Viewer(port=port)
        try:
            assert viewer.port != port and viewer.url.endswith(f":{viewer.port}")
            assert f"port {port} is in use" in capsys.readouterr().out
        finally:
            viewer.stop()


@pytest.fixture(scope="module")
def lerf_run(tmp_path_factory):
    """A tiny lerf run on a two-object procedural scene (a red sphere, a blue cube)."""
    from langfield.world.dataset import write_scene_dataset

    scene = tmp_path_factory.mktemp("viewer_scene")
    write_scene_dataset(
        scene, seed=3, objects=2, views=16, resolution=48, kinds=("sphere", "cube"), colors=("red", "blue")
    )
    run = tmp_path_factory.mktemp("viewer_lerf") / "run"
    result = langfield(
        *("train", "lerf", "--data", scene, "--output", run, "--max-steps", "300", "--seed", "0", "--no-progress"),
        *("--model.resolution", "48", "--model.initial-resolution", "32", "--model.grow-at", "150"),
        *("--model.language-resolution", "24"),
        *("--model.crop-fractions", "0.3", "0.5", "--model.cache-dir", "none", "--eval-every", "0"),
        *("--batch-rays", "512"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return run


def screenshot(page) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB")).astype(np.float32)


def wait_frame(tab, after: float, final: bool = True, timeout: float = 20.0):
    """The first frame sent after ``after`` (a full-resolution one when ``final``)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        for frame in list(tab.frames):
            if frame.sent > after and (frame.final or not final):
                return frame
        time.sleep(0.02)
    raise AssertionError(f"no frame after {timeout} s; errors: {tab.errors}")


#: the page's size, and a part of it that neither the control panel (right) nor the browser's notice (top left) covers
PAGE = (960, 540)
SCENE = (slice(160, 530), slice(10, 620))


@needs_browser
def test_the_page_shows_the_field_follows_the_mouse_and_answers_a_query(lerf_run, tmp_path):
    from PIL import Image

    from langfield.run import load_run
    from langfield.viewer import Viewer
    from langfield.viewer.browser import drag, open_page

    viewer = Viewer(port=free_port())
    viewer.show(load_run(lerf_run, "cpu"))
    try:
        with open_page(viewer.url, *PAGE) as page:
            tab = viewer.wait_for_tab()
            first = wait_frame(tab, 0.0)
            time.sleep(0.5)
            with_cameras = screenshot(page)
            page.get_by_text("Training cameras").click()  # hide the frustums (their images are sharper)
            page.get_by_text("Scene box").click()
            time.sleep(1.0)
            shown = screenshot(page)
            assert np.abs(with_cameras[SCENE] - shown[SCENE]).mean() > 1  # the frustums went away
            # not blank, and it is the field: the page's scene area matches the frame the server drew
            frame = np.asarray(Image.fromarray(tab.last_final).resize(PAGE, Image.Resampling.BILINEAR))
            region, drawn = shown[SCENE], frame[SCENE].astype(np.float32)
            assert region.std() > 10, region.std()
            assert np.corrcoef(region.mean(-1).ravel(), drawn.mean(-1).ravel())[0, 1] > 0.8
            assert (first.width, first.height) == (
                round(viewer.default_height * PAGE[0] / PAGE[1]),
                viewer.default_height,
            )

            # moving the camera: coarse frames while it moves, the full one soon after it rests, a new picture
            before = time.perf_counter()
            drag(page, (100, 400), (180, 410), seconds=1.5, steps=20)
            moved = [f for f in list(tab.frames) if f.sent > before]
            rested = wait_frame(tab, tab._moved_at)
            assert rested.sent - tab._moved_at < 3.0
            assert any(not f.final and f.height < rested.height for f in moved), moved
            time.sleep(0.5)
            orbited = screenshot(page)
            assert np.abs(orbited[SCENE] - region).mean() > 5

            # a text query: the relevancy heat-map over the view, and the query's scale in the panel
            page.locator('xpath=//*[text()="Query"]/following::input[1]').fill("a red sphere")
            asked = time.perf_counter()
            page.get_by_role("button", name="Add query").click()
            wait_frame(tab, asked)
            time.sleep(0.7)
            queried = screenshot(page)
            assert np.abs(queried[SCENE] - orbited[SCENE]).mean() > 2
            assert "a red sphere" in page.content() and not tab.errors

            # the view saved as PNG, beside the run, never over an earlier one
            page.get_by_role("button", name="Save view as PNG").click()
            page.get_by_role("button", name="Save view as PNG").click()
            deadline = time.time() + 10
            while len(list((lerf_run / "views").glob("view_*.png"))) < 2 and time.time() < deadline:
                time.sleep(0.1)
            saved = sorted((lerf_run / "views").glob("view_*.png"))
            assert [p.name for p in saved] == ["view_0001.png", "view_0002.png"]
            assert np.asarray(Image.open(saved[0])).std() > 10
    finally:
        viewer.stop()


@needs_browser
def test_train_with_the_viewer_shows_training_and_keeps_serving(sphere_scene, tmp_path):
    from langfield.viewer.browser import open_page

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "langfield.cli.main", "train", "nerf", "--data", str(sphere_scene)]
        + ["--output", str(tmp_path / "run"), "--max-steps", "80", "--batch-rays", "1024", "--no-progress"]
        + ["--eval-every", "0"]
        + ["--viewer", "--viewer-port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith(f"viewer at http://127.0.0.1:{port}")
        with open_page(f"http://127.0.0.1:{port}", *PAGE) as page:
            page.wait_for_function("document.body.innerText.includes('training')", timeout=60_000)
            for line in process.stdout:
                if line.startswith("training done"):
                    break
            page.wait_for_function("document.body.innerText.includes('trained for 80 steps')", timeout=30_000)
            time.sleep(1.0)
            shot = screenshot(page)[SCENE]
            assert shot.std() > 5  # the sphere over the background, drawn after training ended
        # the tab closed mid-way; the server still serves a new one
        with open_page(f"http://127.0.0.1:{port}", *PAGE) as page:
            page.wait_for_function("document.body.innerText.includes('trained for 80 steps')", timeout=30_000)
        assert process.poll() is None
    finally:
        state = signal_state(process.pid)
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()  # a failure must not leave the training and its server running
            process.communicate()
            raise AssertionError(f"train --viewer did not stop on SIGINT; its signals before it: {state}") from None
    assert process.returncode == 130 and "Traceback" not in err, err
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


def test_a_clipnerf_edit_applies_at_once_and_changes_the_view():
    """The clipnerf panel on the shipped chair model (it carries its mappers): an edit box with a prompt."""
    from langfield.run import load_run
    from langfield.viewer import Viewer
    from langfield.viewer.panels import ClipNerfPanel

    viewer = Viewer(port=free_port())
    try:
        viewer.show(load_run("chair", "cpu"))
        said = []
        tab = types.SimpleNamespace(
            viewer=viewer,
            notify=lambda *a, **k: said.append(a),
            action=lambda job: lambda _event: job(),
            rerender=lambda: None,
        )
        panel = ClipNerfPanel(tab)  # type: ignore[arg-type]
        panel.build(viewer.server.gui)  # the server-wide GUI has the per-tab API
        cameras = viewer.model.scene.cameras.scaled(24 / viewer.model.scene.cameras.height)

        def draw() -> np.ndarray:
            with viewer.hold():
                return panel.draw(viewer.model, cameras[0], "rgb", lambda: False, True).astype(np.float32)

        before = draw()
        panel.apply("a red chair")
        assert panel.codes is not None and not said, said
        assert "edited towards 'a red chair'" in panel.status.content
        after = draw()
        assert np.abs(after - before).mean() > 1.0
        assert (after[..., 0] - after[..., 1]).mean() > (before[..., 0] - before[..., 1]).mean()  # redder
        panel.apply(str(Path("/nonexistent/picture.png")))  # not a file: read as a prompt, still an edit
        panel.reset()
        assert np.allclose(draw(), before)
    finally:
        viewer.stop()


def test_a_render_the_camera_abandons_leaves_a_training_model_training():
    """The viewer draws between training steps: a frame cut short must not leave the model in evaluation mode."""
    from langfield.run import load_run
    from langfield.viewer.render import Cancelled, render_view

    model = load_run("chair", "cpu").model.train()
    camera = model.scene.cameras.scaled(24 / model.scene.cameras.height)[0]
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 1  # the second chunk

    model.render_chunk = 128
    with pytest.raises(Cancelled):
        render_view(model, camera, cancelled)
    assert len(calls) == 2 and model.training
    model.eval()
    full = render_view(model, camera)
    assert full["rgb"].shape == (24, 24, 3) and full["rgb"].dtype == torch.float32 and not model.training
