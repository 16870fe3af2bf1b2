"""Process-wide memory settings for the programs rawdev runs (the CLI and batch workers)."""

from __future__ import annotations

import ctypes
import sys

__all__ = ["MMAP_THRESHOLD_BYTES", "KEEP_FREE_BYTES", "ARENAS", "tune_allocator"]

#: Allocations of this size or more get their own mapping (glibc's ``M_MMAP_THRESHOLD``; its largest
#: accepted value on 64-bit systems).
MMAP_THRESHOLD_BYTES = 32 << 20
#: Free memory at the top of the heap that glibc keeps instead of returning it (``M_TRIM_THRESHOLD``).
KEEP_FREE_BYTES = 64 << 20
# glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: Heaps (arenas) the threads share: the developer runs two regions or tiles at once.
ARENAS = 2


def tune_allocator() -> bool:
    """Set glibc's allocator for the developer's pattern: many arrays of 1-30 MB made and freed per
    band, by two threads.

    - Blocks up to 32 MB come from the heap, and freed ones are handed out again. A block mapped
      afresh costs a page fault per 4 KiB when first written; under a 1 MB threshold (the setting
      before) that, not the arithmetic, was most of the numpy developer's time (24 MP `menon-srgb`
      to JPEG: 2.7-3.0 s against 1.5-1.7 s) and a fifth of a learned one's (`jdd`: 54.2 s against
      43.5 s).
    - At most 64 MB of free heap is kept, and two arenas serve every thread: the reason for the
      1 MB threshold was that freed band buffers piled up in each tile thread's own arena. Keeping
      only 16 MB returned the bands' buffers too soon (`menon-srgb` 1.60-1.75 s against 1.31-1.39 s
      with 64 MB, 4 runs each). Peak RSS of a 24 MP develop to JPEG, one run each: `jdd` 675 MB
      (561 with the 1 MB threshold, 814 with 512 MB kept and an arena per thread), `jdd-fast-int8`
      685 MB (631 / 786), `menon-srgb` 348 MB (387 with 512 MB kept).

    Applies to the whole process, which is why only programs call it (the CLI, batch workers), not
    the library on import. Returns False where there is no glibc ``mallopt`` (macOS, Windows; musl
    returns 0 and changes nothing).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        return all(bool(libc.mallopt(k, v)) for k, v in (
            (_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), (_M_TRIM_THRESHOLD, KEEP_FREE_BYTES), (_M_ARENA_MAX, ARENAS)))
    except (OSError, AttributeError):
        return False
