"""Atomic file writes and guarded output locations.

Every file langfield writes goes through :func:`atomic_write` (or its helpers): the content goes to a uniquely
named temporary file in the destination's folder, is flushed to disk, and is renamed over the destination in one
step. A crash, Ctrl-C or SIGKILL at any moment leaves either the old file or the new one, never a torn one; the
temporary files such a kill leaves are named ``.NAME.*.tmp`` and removed by :func:`remove_stale_temporaries`.

:func:`fresh_file` and :func:`fresh_folder` are the rule for what a command may write over: nothing that exists
already unless the user passed ``--overwrite``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from langfield.errors import LangfieldError

TEMPORARY_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: the mode an ordinary file write would give (mkstemp makes its files private, 0600)
FILE_MODE = 0o666 & ~_umask()


def temporary_path(path: Path, keep_suffix: bool = False) -> Path:
    """A new, unique, empty file beside ``path`` (``.NAME.XXXX.tmp``, or ``.NAME.XXXX.tmp.mp4`` with
    ``keep_suffix``, for writers that pick the format from the name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = TEMPORARY_SUFFIX + (path.suffix if keep_suffix else "")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError), open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(path: Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; when the block ends normally the file there replaces ``path``
    (the temporary is removed if the block fails). For writers that take a file name (video encoders)."""
    path = Path(path)
    tmp = temporary_path(path, keep_suffix)
    try:
        yield tmp
        _fsync(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """An open handle (``"wb"`` or ``"w"``, UTF-8) on a temporary file that replaces ``path`` when the block
    ends normally."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write writes whole files ('w' or 'wb'), not mode {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding="utf-8" if mode == "w" else None) as handle:
            yield handle
            handle.flush()


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def write_text(path: Path, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)


def write_json(path: Path, value: Any, indent: int | None = 2) -> None:
    write_text(path, json.dumps(value, indent=indent) + "\n")


def update_json(path: Path, values: dict) -> dict:
    """Merge ``values`` into the JSON object in ``path`` (a missing or unreadable file starts empty); returns it."""
    try:
        previous = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    merged = {**(previous if isinstance(previous, dict) else {}), **values}
    write_json(path, merged)
    return merged


def write_image(path: Path, image: Any, jpeg_quality: int = 95) -> None:
    """A PIL image, in the format of ``path``'s suffix (PNG when unknown; JPEG at ``jpeg_quality``)."""
    from PIL import Image

    fmt = Image.registered_extensions().get(Path(path).suffix.lower(), "PNG")
    with atomic_write(path, "wb") as handle:
        if fmt == "JPEG":
            image.save(handle, format=fmt, quality=jpeg_quality)
        else:
            image.save(handle, format=fmt)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files that a killed writer left in ``folder`` (only langfield's ``.NAME.*.tmp*``)."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if entry.name.startswith(".") and TEMPORARY_SUFFIX in entry.name and entry.is_file():
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
    return removed


def fresh_file(path: Path, overwrite: bool) -> Path:
    """``path``, refused when a file is already there and ``overwrite`` is false."""
    path = Path(path)
    if path.is_dir():
        raise LangfieldError(f"{path}: is a folder; give a file name")
    if path.exists() and not overwrite:
        raise LangfieldError(f"{path}: already exists; pass --overwrite to replace it or choose another name")
    return path


def fresh_folder(path: Path, overwrite: bool, owned_marker: str | None = None) -> Path:
    """``path`` as an output folder, created if needed. A folder that holds anything is refused unless
    ``overwrite`` (or, with ``owned_marker``, unless it holds that marker file: a folder the same command made
    before). Returns the folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LangfieldError(f"{path}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        if owned_marker is None or not (path / owned_marker).is_file():
            raise LangfieldError(f"{path}: folder is not empty; pass --overwrite to write into it or choose another")
    path.mkdir(parents=True, exist_ok=True)
    return path
