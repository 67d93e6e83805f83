"""Up-front memory estimates: a request that cannot fit (a render, a mesh lattice, a dataset, a grid) is refused
before any work starts, with the estimate in the message, instead of swapping the machine to a halt."""

from __future__ import annotations

import os

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
