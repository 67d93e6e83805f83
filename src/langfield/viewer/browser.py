"""The viewer in a real browser, for the tests and the viewer benchmark: headless Chromium (the system's, e.g.
Debian's ``chromium`` package) driven by playwright, WebGL through SwiftShader (no GPU needed)."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from typing import Iterator

from langfield.errors import LangfieldError

#: a headless Chromium that draws WebGL in software and makes no connection of its own
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-gl=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def find_chromium() -> str | None:
    """``$LANGFIELD_CHROMIUM``, else the first of chromium, chromium-browser, google-chrome on the PATH."""
    if os.environ.get("LANGFIELD_CHROMIUM"):
        return os.environ["LANGFIELD_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@contextlib.contextmanager
def open_page(url: str, width: int = 960, height: int = 600, timeout: float = 60.0) -> Iterator:
    """A playwright page showing ``url`` once its WebGL canvas exists."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise LangfieldError("the browser checks need playwright: pip install -e '.[test]'") from None
    executable = find_chromium()
    if executable is None:
        raise LangfieldError(
            "no Chromium found: install it (Debian: apt-get install chromium) or set LANGFIELD_CHROMIUM"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url, timeout=timeout * 1000)
            page.wait_for_selector("canvas", timeout=timeout * 1000)
            yield page
        finally:
            browser.close()


def drag(page, start: tuple[float, float], end: tuple[float, float], seconds: float, steps: int = 60) -> None:
    """Press the left button at ``start`` and move to ``end`` in ``steps`` even moves over ``seconds`` (an orbit)."""
    page.mouse.move(*start)
    page.mouse.down()
    for i in range(1, steps + 1):
        t = i / steps
        page.mouse.move(start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]))
        time.sleep(seconds / steps)
    page.mouse.up()
