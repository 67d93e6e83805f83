"""The web viewer's speed in a real browser (BENCHMARKS.md, "Web viewer").

    .venv/bin/python benchmarks/viewer.py --out benchmarks/out/viewer [--steps 1500] [--train-steps 1000]

1. a `nerf` run on lego at 100×100 (`--downscale 8`, --steps steps, reused when present);
2. `Viewer` on it, headless Chromium (960×600 page) orbiting the camera for 4 s: coarse frames per second while it
   moves and their size, then the time from the camera's last move to the full-resolution frame;
3. the training slowdown of `--viewer`: `langfield train nerf` for --train-steps steps alone, then with `--viewer`
   and a browser tab watching with the camera at rest (`--watch rest`), orbiting it all along (`orbit`) or no tab at
   all (`none`), then alone again; steps/s and samples/s of each, side by side, with the CPU seconds the training
   process and the browser's processes used (read from /proc): on two shared cores the browser's software WebGL is a
   cost the viewer does not control.
Writes OUT/RESULTS.json and OUT/viewer_moving.png / OUT/viewer_resting.png (screenshots of the page).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LANGFIELD = [sys.executable, "-m", "langfield.cli.main"]
LEGO = ROOT.parent / "shared" / "data" / "lego"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used (0 when it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BrowserCpu:
    """CPU seconds of every Chromium process while it runs (sampled each second: a process that ends keeps its last
    figure)."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    try:
                        if "chrom" not in (entry / "comm").read_text():
                            continue
                    except OSError:
                        continue
                    self.seen[int(entry.name)] = max(self.seen.get(int(entry.name), 0.0), cpu_seconds(int(entry.name)))
            if self._stop.wait(1.0):
                return

    def __enter__(self) -> "BrowserCpu":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def total(self) -> float:
        return sum(self.seen.values())


def train(output: Path, steps: int, *extra: str) -> subprocess.Popen:
    args = ["train", "nerf", "--data", str(LEGO), "--output", str(output), "--downscale", "8"]
    args += ["--max-steps", str(steps), "--seed", "0", "--no-progress", "--overwrite", "--eval-every", "0", *extra]
    print("$ langfield", " ".join(args), flush=True)
    return subprocess.Popen(LANGFIELD + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def view_speed(run: Path, out: Path) -> dict:
    from langfield.run import load_run
    from langfield.viewer import Viewer
    from langfield.viewer.browser import drag, open_page

    viewer = Viewer(port=7300)
    viewer.show(load_run(run))
    try:
        with open_page(viewer.url, width=640, height=400) as page:
            tab = viewer.wait_for_tab()
            while not any(f.final for f in tab.frames):
                time.sleep(0.05)
            started = time.perf_counter()
            drag(page, (60, 240), (280, 280), seconds=4.0, steps=80)  # left of the control panel
            moved = time.perf_counter()
            page.screenshot(path=str(out / "viewer_moving.png"))
            last_move = tab._moved_at
            deadline = time.perf_counter() + 10
            while time.perf_counter() < deadline and not any(f.final and f.sent > last_move for f in tab.frames):
                time.sleep(0.01)
            final = next(f for f in tab.frames if f.final and f.sent > last_move)
            time.sleep(0.5)
            page.screenshot(path=str(out / "viewer_resting.png"))
        during = [f for f in tab.frames if started <= f.sent <= moved]
        coarse = [f for f in during if not f.final]
        return {
            "drag_seconds": round(moved - started, 2),
            "frames_while_moving": len(during),
            "fps_while_moving": round(len(during) / (moved - started), 1),
            "coarse_size": sorted({(f.width, f.height) for f in coarse})[:3],
            "coarse_draw_seconds_mean": round(sum(f.seconds for f in coarse) / max(len(coarse), 1), 3),
            "full_size": [final.width, final.height],
            "full_draw_seconds": round(final.seconds, 3),
            "rest_to_full_seconds": round(final.sent - last_move, 3),
        }
    finally:
        viewer.stop()


def wait_port(port: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"nothing answers on port {port}")


def orbit_until(url: str, stop: threading.Event, counts: dict) -> None:
    from langfield.viewer.browser import drag, open_page

    with BrowserCpu() as cpu, open_page(url) as page:
        while not stop.is_set():
            drag(page, (400, 300), (700, 330), seconds=2.0, steps=40)
            drag(page, (700, 330), (400, 300), seconds=2.0, steps=40)
            counts["drags"] = counts.get("drags", 0) + 2
        page.screenshot(path=str(counts["screenshot"]))
    counts["browser_cpu_seconds"] = round(cpu.total, 1)  # the browser has closed: its last samples are kept


def watch_until(url: str, stop: threading.Event, counts: dict) -> None:
    """A browser tab on the page with the camera at rest: the viewer redraws the training every --viewer-refresh s."""
    from langfield.viewer.browser import open_page

    with BrowserCpu() as cpu, open_page(url) as page:
        stop.wait()
        page.screenshot(path=str(counts["screenshot"]))
    counts["browser_cpu_seconds"] = round(cpu.total, 1)  # the browser has closed: its last samples are kept


def no_browser(url: str, stop: threading.Event, counts: dict) -> None:
    """No tab at all: what the viewer's server costs by itself (its status and redraws go to nobody)."""
    stop.wait()


WATCHERS = {"orbit": orbit_until, "rest": watch_until, "none": no_browser}


def training_slowdown(out: Path, steps: int, watches: list[str], refresh: float | None = None) -> dict:
    results = {}
    for name in ("alone", *(f"viewer_{w}" for w in watches), "alone_again"):
        output = out / f"train_{name}"
        if name.startswith("viewer"):
            watch = name.removeprefix("viewer_")
            extra = ["--viewer-refresh", str(refresh)] if refresh is not None else []
            process = train(output, steps, "--viewer", "--viewer-port", "7310", *extra)
            wait_port(7310)
            stop, counts = threading.Event(), {"screenshot": out / f"viewer_training_{watch}.png"}
            browser = threading.Thread(target=WATCHERS[watch], args=("http://127.0.0.1:7310", stop, counts))
            browser.start()
            assert process.stdout is not None
            for line in process.stdout:
                print("  ", line.rstrip(), flush=True)
                if line.startswith("training done"):
                    break
            training_cpu = cpu_seconds(process.pid)
            stop.set()
            browser.join()
            process.terminate()
            process.wait(30)
            results[f"browser_drags_{watch}"] = counts.get("drags", 0)
        else:
            process = train(output, steps)
            assert process.stdout is not None
            text = process.stdout.read()
            training_cpu = cpu_seconds(process.pid)  # not yet reaped: /proc still has it
            process.wait()
            print(text, flush=True)
            counts = {}
        summary = json.loads((output / "train_summary.json").read_text())
        results[name] = {
            "steps": summary["steps"],
            "seconds": summary["seconds"],
            "steps_per_second": round(summary["steps"] / summary["seconds"], 2),
            "samples_per_second": summary["samples_per_second"],
            "training_process_cpu_seconds": round(training_cpu, 1),
        }
        if "browser_cpu_seconds" in counts:
            results[name]["browser_cpu_seconds"] = counts["browser_cpu_seconds"]
    alone = (results["alone"]["steps_per_second"] + results["alone_again"]["steps_per_second"]) / 2
    for watch in watches:
        results[f"slowdown_{watch}"] = round(1 - results[f"viewer_{watch}"]["steps_per_second"] / alone, 3)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "viewer")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--train-steps", type=int, default=1000)
    parser.add_argument(
        "--watch", nargs="+", default=["rest", "orbit"], choices=list(WATCHERS), help="how the browser watches training"
    )
    parser.add_argument("--viewer-refresh", type=float, default=None, help="passed to train --viewer-refresh")
    parser.add_argument("--training-only", action="store_true", help="only the training slowdown (step 3)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    run = args.out / "lego_run"
    results = {}
    if not args.training_only:
        if not (run / "checkpoint.pt").is_file():
            process = train(run, args.steps)
            print(process.communicate()[0], flush=True)
        results["view"] = view_speed(run, args.out)
        print(json.dumps(results["view"], indent=2), flush=True)
    results["training"] = training_slowdown(args.out, args.train_steps, args.watch, args.viewer_refresh)
    print(json.dumps(results, indent=2), flush=True)
    (args.out / "RESULTS.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
