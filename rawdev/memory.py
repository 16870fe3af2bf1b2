"""Process-wide memory settings for the programs rawdev runs (the CLI and batch workers)."""

from __future__ import annotations

import ctypes
import sys

__all__ = ["MMAP_THRESHOLD_BYTES", "return_freed_memory", "reuse_freed_memory", "memory_policy_for"]

#: Allocations of this size or more get their own mapping (glibc's ``M_MMAP_THRESHOLD``).
MMAP_THRESHOLD_BYTES = 1 << 20
# glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: The largest mmap threshold glibc accepts on 64-bit systems (its DEFAULT_MMAP_THRESHOLD_MAX).
_MMAP_THRESHOLD_MAX = 32 << 20
#: Free memory at the top of the heap that glibc keeps instead of returning it.
_KEEP_BYTES = 512 << 20


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


def reuse_freed_memory() -> bool:
    """Ask glibc to keep what the developer frees and hand it out again: allocations up to 32 MB
    come from the heap, and up to 512 MB of free heap is kept instead of being returned.

    Why: the numpy (OpenCV) classical developer makes and frees about a hundred arrays of 1-6 MB
    per band of a few hundred rows. Each array mapped afresh costs a page fault per 4 KiB when it
    is first written, and those faults, not the arithmetic, were most of its time: a 24 MP DNG to
    JPEG with ``menon-srgb`` took 2.7-3.0 s as a whole process under :func:`return_freed_memory`'s
    1 MB threshold and 1.5-1.7 s with freed memory kept (same run, peak RSS 327 and 332 MB: the
    bands reuse the same blocks). Learned back-ends keep :func:`return_freed_memory`: their time is
    the network's, and their tile threads' arenas are what that setting bounds.

    Returns False where there is no glibc ``mallopt``.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES))
    except (OSError, AttributeError):
        return False


def memory_policy_for(arrays: str) -> bool:
    """The allocation policy of a develop whose back-end's runner takes ``arrays`` (its spec's
    field): :func:`reuse_freed_memory` for numpy runners, :func:`return_freed_memory` for torch."""
    return reuse_freed_memory() if arrays == "numpy" else return_freed_memory()

