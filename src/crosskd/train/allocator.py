"""glibc malloc settings for a training or evaluation process: reuse freed memory.

glibc serves each allocation above its mmap threshold (adjusted at run time, at most 32 MB)
with a fresh mapping, whose pages are faulted in and zeroed on first touch and unmapped on
free. A CE+ step allocates and frees the same tens of MB every time (oneDNN writes every
product into fresh memory: each text projection's input gradient, the blocks of its weight
gradient), so on the CPU that is paid every step. A fixed threshold of 64 MB and a trim
threshold of 256 MB keep such tensors in the heap, where freed memory is reused; larger ones
(whole weights, the optimizer's moments) are still mapped and returned. Where mallopt does not
exist (not glibc), nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

#: allocations at least this large get their own mapping (and return it when freed)
MMAP_THRESHOLD = 64 * 2**20
#: free memory at the top of the heap beyond this is returned to the system
TRIM_THRESHOLD = 256 * 2**20
# glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4


@functools.cache
def _mallopt() -> ctypes._CFuncPtr | None:
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    return getattr(libc, "mallopt", None)


def malloc_options_available() -> bool:
    """True where glibc's mallopt exists."""
    return _mallopt() is not None


def set_malloc_options(options: dict[int, int]) -> bool:
    """Set glibc mallopt parameters (M_* above) for this process; False where there is no
    mallopt or glibc refused one."""
    mallopt = _mallopt()
    return mallopt is not None and all(bool(mallopt(key, value)) for key, value in options.items())


def reuse_freed_memory(mmap_threshold: int = MMAP_THRESHOLD,
                       trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Set glibc's mmap and trim thresholds for this process; False where there is no mallopt."""
    return set_malloc_options({M_MMAP_THRESHOLD: mmap_threshold,
                               M_TRIM_THRESHOLD: trim_threshold})
