"""``langfield COMMAND ...``: a thin dispatcher. Each command parses its own options with tyro and imports torch
only when it runs, so ``langfield --help`` is instant. User errors print one line and exit with code 2."""

from __future__ import annotations

import os
import sys
from typing import Callable

from langfield.errors import LangfieldError

COMMANDS: dict[str, tuple[str, str]] = {
    "train": (
        "langfield.cli.commands:train",
        "train a method on a dataset: langfield train METHOD --data DIR --output RUN",
    ),
    "eval": ("langfield.cli.commands:evaluate", "render the held-out views of a run, write RUN/metrics.json"),
    "render": ("langfield.cli.commands:render", "render a camera path of a run to MP4 or PNG frames"),
    "export": ("langfield.cli.commands:export", "export a point cloud (PLY) or a coloured mesh (GLB/OBJ/PLY)"),
    "generate": (
        "langfield.cli.generate:generate",
        'text to a 3D object (DreamFusion): langfield generate "a red mug" --output RUN',
    ),
    "invert": (
        "langfield.cli.invert:invert",
        "an image's pose and codes for a clipnerf run: langfield invert RUN IMAGE --out DIR",
    ),
    "mappers": ("langfield.cli.edit:mappers", "train the text/image → code mappers of a clipnerf run (CLIP-NeRF)"),
    "edit": (
        "langfield.cli.edit:edit",
        'edit a clipnerf object with words or an image: langfield edit RUN "a red chair" --out DIR',
    ),
    "world": (
        "langfield.cli.world:world",
        "the procedural world: `world scene` datasets, `world images` labelled images",
    ),
    "view": ("langfield.cli.view:view", "a run in the browser (viser): langfield view RUN [--port 7007]"),
    "query": ("langfield.cli.query:query", "ask a lerf run where things are: heat-maps, raw relevancy, 3D location"),
    "clip": (
        "langfield.cli.clip:clip",
        "zero-shot image classification with an encoder (`clip classify`), its benchmark (`clip eval`)",
    ),
    "process": (
        "langfield.cli.process:process",
        "your photos or video -> a posed dataset (COLMAP via pycolmap): langfield process images DIR --out DATA",
    ),
    "batch": (
        "langfield.cli.batch:batch",
        "a grid of langfield commands as Ray tasks (local or a cluster): langfield batch SPEC.toml",
    ),
    "demo": ("langfield.cli.demo:demo", "the offline demo: train, evaluate, render and export in a few minutes"),
}


def usage() -> str:
    lines = ["usage: langfield COMMAND [OPTIONS]   (langfield COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name:<8} {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "--allow-download (with any command): fetch a model named by a hub id that is not in the local cache"]
    return "\n".join(lines)


def _load(target: str) -> Callable[[list[str]], None]:
    import importlib

    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return
    if argv[0] in ("--version", "version"):
        from langfield import __version__

        print(__version__)
        return
    from langfield import hub

    hub.configure(hub.FLAG in argv)  # no download from the hub unless asked for, anywhere in the command line
    argv = [a for a in argv if a != hub.FLAG]
    if not argv:
        print(usage())
        return
    command = argv[0]
    if command not in COMMANDS:
        _error_line(f"error: unknown command '{command}' (available: {', '.join(COMMANDS)})")
        sys.exit(2)
    run_guarded(lambda: _load(COMMANDS[command][0])(argv[1:]))


def _accept_interrupts() -> None:
    """Unblock SIGINT and SIGTERM: a blocked signal stays blocked across fork and exec, so a command started by a
    process that had them blocked could not be stopped by Ctrl-C or a batch's cancel; Python does not unblock them
    itself. (An *ignored* SIGINT is left ignored: that is what a shell asks of a job it starts in the background.)"""
    import signal

    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT, signal.SIGTERM])


def _error_line(text: str) -> None:
    """``text`` and its newline to stderr in one write: ranks of one torchrun share a stderr, and print's two writes
    (the text, then the newline) let another rank's line in between (seen: two error lines run together)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def run_guarded(job: Callable[[], object]) -> None:
    """Run ``job`` as a command: a user error prints one line and exits 2, Ctrl-C exits 130 and SIGTERM 143 (the
    scripts under ``scripts/`` use this too)."""
    _accept_interrupts()
    try:
        job()
        code = 0
    except LangfieldError as exc:
        _error_line(f"error: {exc}")
        code = 2
    except KeyboardInterrupt as exc:
        from langfield.train.interrupt import Aborted

        signum = getattr(exc, "signum", 2)
        _error_line("stopped at once, nothing saved" if isinstance(exc, Aborted) else "interrupted")
        code = 128 + signum
    except BrokenPipeError:
        os._exit(1)
    leave(code)


def leave(code: int) -> None:
    """End the command with exit status ``code`` (return for 0). A rank of a torchrun training leaves at once with
    its streams flushed, without Python's finalisation: a gloo thread outlives ``destroy_process_group`` (its TCP
    loop), and in CI a rank once died of SIGABRT ("terminate called without an active exception", no Python error:
    a C++ teardown race is the likeliest cause) — torchrun then reports the run failed and stops the other rank.
    Every file of the run is written and closed by then (atomically); nothing is left to finalise."""
    distributed = sys.modules.get("langfield.train.distributed")
    if distributed is not None and distributed.joined_a_group():
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more can be said
                pass
        os._exit(code)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
