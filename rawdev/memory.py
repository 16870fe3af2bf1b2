"""Process-wide memory settings for the programs rawdev runs (the CLI and batch workers)."""

from __future__ import annotations

import ctypes
import sys

__all__ = ["MMAP_THRESHOLD_BYTES", "return_freed_memory"]

#: Allocations of this size or more get their own mapping (glibc's ``M_MMAP_THRESHOLD``).
MMAP_THRESHOLD_BYTES = 1 << 20
_M_MMAP_THRESHOLD = -3  # glibc's <malloc.h>


def return_freed_memory() -> bool:
    """Ask glibc to serve every allocation of :data:`MMAP_THRESHOLD_BYTES` or more by ``mmap``, so
    that what the developer frees goes back to the system at once.

    Why: glibc's threshold adapts, rising (up to 32 MB) each time a mapped block is freed, so after
    the first bands the developer's band buffers (5-15 MB each: a region's mosaic, its float RGB,
    its output codes) come from the heap instead, and with tile worker threads each having an arena
    of its own, freed bands pile up there. Measured on a 12 MP DNG developed with ``jdd`` to TIFF:
    peak RSS 656 MB with the adaptive threshold, 485 MB with this (docs/benchmarks_jdd.md).

    Applies to the whole process, which is why only programs call it (the CLI, batch workers), not
    the library on import. Returns False where there is no glibc ``mallopt`` (macOS, Windows, musl
    returns 0 and changes nothing).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False
