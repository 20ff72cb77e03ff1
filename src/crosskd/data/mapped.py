"""Keep memory-mapped feature pages that were read from counting in the process's memory.

The packed features are memory-mapped (crosskd.data.store). Every page a batch reads stays
mapped, so streaming through a split's caption tokens would grow the resident set by the
whole split (4.6 GB for MSRVTT full-test at 1600-d tokens) although the pages are only
page cache. Dropping the mapping's pages (madvise DONTNEED on a read-only file mapping)
leaves the data in the page cache: a later read maps it again without touching the disk.
"""

from __future__ import annotations

import mmap
from typing import Any

import numpy as np

from crosskd.tree import leaves


def release_mapped_pages(split: Any) -> None:
    """Unmap the pages read so far from a split's memory-mapped features (no-op otherwise)."""
    if not hasattr(mmap, "MADV_DONTNEED"):
        return
    seen: set[int] = set()
    for array in leaves(getattr(split, "features", None), np.memmap):
        mapping = _mapping(array)
        if mapping is not None and id(mapping) not in seen and not mapping.closed:
            seen.add(id(mapping))
            mapping.madvise(mmap.MADV_DONTNEED)


def _mapping(array: np.ndarray) -> mmap.mmap | None:
    """The mmap object at the bottom of an array's chain of bases, if it has one."""
    base: Any = array
    while isinstance(base, np.ndarray):
        base = base.base
    return base if isinstance(base, mmap.mmap) else None
