"""Up-front memory estimates: a request that cannot fit (a render, a mesh lattice, a dataset, a grid) is refused
before any work starts, with the estimate in the message, instead of swapping the machine to a halt."""

from __future__ import annotations

import ctypes
import os
import platform

from langfield.errors import LangfieldError


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``; else physical memory; else None)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def require_memory(nbytes: float, what: str, hint: str, available: int | None = None) -> None:
    """Refuse ``what`` when its estimated ``nbytes`` exceed the memory available (``hint``: how to ask less)."""
    available = available_memory() if available is None else available
    if available is not None and nbytes > available:
        raise LangfieldError(
            f"{what} needs about {human_bytes(nbytes)} of memory, more than the {human_bytes(available)} available; "
            f"{hint}"
        )


#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_reusing = False


def reuse_freed_memory(keep: int = 1 << 30) -> bool:
    """Have glibc keep freed memory for the next allocation instead of returning it to the system (at most ``keep``
    bytes of it). A training step allocates and frees the same large tensors (a grid's gradient: 58 MB at 160^3 ×
    12 channels) each time; glibc maps every block over 32 MB afresh and the kernel zero-fills its pages on first
    touch, which took over a quarter of a step here (76 → 55 ms/step at lego's final resolution: BENCHMARKS.md). What
    PyTorch's CPU tuning guides get from jemalloc or tcmalloc, without another library. Process-wide, once; only
    with glibc; ``LANGFIELD_MALLOC=system`` leaves the allocator alone. Returns whether it is in effect."""
    global _reusing
    if _reusing:
        return True
    if os.environ.get("LANGFIELD_MALLOC", "") == "system" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        _reusing = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, int(keep)))
    except (OSError, AttributeError):
        return False
    return _reusing
