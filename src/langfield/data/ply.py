"""Reading PLY point clouds (binary little/big endian or ASCII; any scalar property types): the sparse points
of a processed capture (``sparse_pc.ply``), langfield's own exports, nerfstudio's and Open3D's files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from langfield.errors import LangfieldError

TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip


def read_point_cloud(path: Path) -> np.ndarray:
    """The ``vertex`` element of a PLY file as a structured array (fields named as the file's properties)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LangfieldError(f"{path}: cannot read point cloud ({exc.strerror or exc})") from None
    marker = raw.find(b"end_header")
    if not raw.startswith(b"ply") or marker < 0:
        raise LangfieldError(f"{path}: not a PLY file")
    end = raw.index(b"\n", marker) + 1
    lines = raw[:end].decode("ascii", errors="replace").splitlines()
    fmt = next((line.split()[1] for line in lines if line.startswith("format")), "")
    count, fields, before, element = 0, [], 0, None
    for line in lines:
        words = line.split()
        if words[:1] == ["element"]:
            element = words[1]
            if element == "vertex":
                count = int(words[2])
            elif not fields:
                before += 1  # an element ahead of the vertices: not supported below
        elif words[:1] == ["property"] and element == "vertex":
            if words[1] == "list" or words[1] not in TYPES:
                raise LangfieldError(f"{path}: unsupported vertex property {' '.join(words[1:])!r}")
            fields.append((words[2], TYPES[words[1]]))
    if not fields or before:
        raise LangfieldError(f"{path}: no vertex element at the start of the PLY file")
    try:
        if fmt == "ascii":
            rows = np.loadtxt(raw[end:].decode("ascii").splitlines()[:count], ndmin=2)
            data = np.empty(count, dtype=fields)
            for k, (name, _) in enumerate(fields):
                data[name] = rows[:, k]
            return data
        order = {"binary_little_endian": "<", "binary_big_endian": ">"}[fmt]
        return np.frombuffer(raw[end:], dtype=[(n, order + t) for n, t in fields], count=count)
    except (KeyError, ValueError, IndexError) as exc:
        raise LangfieldError(f"{path}: damaged PLY file ({exc})") from None


def point_positions(path: Path) -> np.ndarray:
    """The (N, 3) float64 positions of a PLY point cloud."""
    data = read_point_cloud(path)
    names = data.dtype.names or ()
    if not all(k in names for k in ("x", "y", "z")):
        raise LangfieldError(f"{path}: the PLY vertices have no x, y, z")
    return np.stack([data["x"], data["y"], data["z"]], axis=-1).astype(np.float64)
