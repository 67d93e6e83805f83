"""``langfield view RUN``: a run in the browser (orbit, pan, zoom; output channels; each method's controls)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from langfield.checks import between
from langfield.cli.parsing import parse

PORT = Annotated[int, between(1, 65535)]


@dataclass
class ViewArgs:
    """Serve a web viewer of RUN (a run folder, a packed run or a shipped run such as `chair`) and print its URL:
    drag to orbit, right-drag to pan, scroll to zoom. The field is drawn at the browser's camera, coarse while it moves
    and at full resolution when it rests; the training cameras show as frustums with their images. lerf runs take
    text queries, dreamfusion runs a shading mode, clipnerf runs an object and an edit. Ctrl-C stops it."""

    run: tyro.conf.Positional[Path]
    port: PORT = 7007
    """The first port tried (the next free one is taken when it is in use)."""
    host: str = "127.0.0.1"
    """The address to listen on; 0.0.0.0 serves other machines too (open the URL with this machine's name)."""
    device: str = "auto"


def view(argv: list[str]) -> None:
    args = parse(ViewArgs, argv, "langfield view")
    from langfield.run import check_run, load_run
    from langfield.ui import console
    from langfield.viewer import Viewer

    check_run(args.run)  # not a run: one line before the server starts
    run = load_run(args.run, args.device)
    viewer = Viewer(args.port, args.host)
    viewer.show(run)
    console.print(f"viewer of {args.run} ({run.method.name}, step {run.step}) at {viewer.url}  (Ctrl-C to stop)")
    viewer.serve_forever()
