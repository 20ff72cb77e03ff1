"""Evaluate a memory-mapped checkpoint without keeping all its large weights resident.

`crosskd test` memory-maps our checkpoints (crosskd.checkpoint.reader): the weights stay in
the page cache until read, but every page a forward pass reads stays mapped and counts in
the process's resident set. For MSRVTT CE+ that is 0.96 GB for the seven 44,800 x 768 text
projections, each read once per chunk of captions. After such a weight has been used by a
forward pass without gradients, its pages are unmapped again (madvise DONTNEED): the page
cache keeps them, so the next chunk maps them again without reading the disk, and about one
projection is resident at a time.

DONTNEED on a private file mapping discards pages changed in place (they revert to the
file's content), so a weight is released only when the kernel reports each of its resident
pages as an unmodified file page (/proc/self/pagemap). Anything else (anonymous memory,
a weight changed after loading, systems without pagemap) is left alone.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

PAGEMAP = Path("/proc/self/pagemap")
#: weights smaller than this stay mapped: releasing them would save little.
MIN_RELEASE_BYTES = 16 * 2**20
# /proc/self/pagemap entry flags (Documentation/admin-guide/mm/pagemap.rst)
_PRESENT = np.uint64(1 << 63)
_SWAPPED = np.uint64(1 << 62)
_FILE_PAGE = np.uint64(1 << 61)


def supported() -> bool:
    """True where the kernel reports page states and madvise can drop pages (Linux)."""
    return PAGEMAP.exists() and hasattr(mmap, "MADV_DONTNEED")


@functools.cache
def _madvise() -> ctypes._CFuncPtr:
    madvise = ctypes.CDLL(None, use_errno=True).madvise
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    return madvise


def _page_span(tensor: torch.Tensor) -> tuple[int, int]:
    """First and one-past-last page address covering the tensor's storage."""
    storage = tensor.untyped_storage()
    start = storage.data_ptr() // mmap.PAGESIZE * mmap.PAGESIZE
    end = -(-(storage.data_ptr() + storage.nbytes()) // mmap.PAGESIZE) * mmap.PAGESIZE
    return start, end


def page_states(start: int, end: int) -> np.ndarray:
    """The pagemap entries of the pages in [start, end)."""
    count = (end - start) // mmap.PAGESIZE
    with PAGEMAP.open("rb") as pagemap:
        raw = os.pread(pagemap.fileno(), 8 * count, start // mmap.PAGESIZE * 8)
    return np.frombuffer(raw, dtype=np.uint64)


def resident_pages(tensor: torch.Tensor) -> int:
    """How many pages of the tensor's storage are mapped into this process now."""
    return int(np.count_nonzero(page_states(*_page_span(tensor)) & _PRESENT))


def release_pages(tensor: torch.Tensor) -> bool:
    """Unmap the tensor's pages if all are unmodified file pages; True when it did."""
    if tensor.device.type != "cpu" or not supported():
        return False
    start, end = _page_span(tensor)
    states = page_states(start, end)
    present = (states & _PRESENT) != 0
    clean = np.where(present, (states & _FILE_PAGE) != 0, (states & _SWAPPED) == 0)
    if not clean.all():
        return False
    return _madvise()(start, end - start, mmap.MADV_DONTNEED) == 0


def _release_after_forward(params: Sequence[nn.Parameter], module: nn.Module, inputs: tuple,
                           output: object) -> None:
    if not torch.is_grad_enabled():
        for param in params:
            release_pages(param)


def release_weights_after_use(model: nn.Module,
                              min_bytes: int = MIN_RELEASE_BYTES) -> list[nn.Parameter]:
    """Release each large weight's pages after every gradient-free forward of its module.

    Returns the weights covered (none where unsupported). Meant for models whose weights
    are memory-mapped from a checkpoint; on weights in ordinary memory it does nothing.
    """
    if not supported():
        return []
    covered = []
    for module in model.modules():
        large = [param for param in module.parameters(recurse=False)
                 if param.nbytes >= min_bytes]
        if large:
            module.register_forward_hook(functools.partial(_release_after_forward, large))
            covered.extend(large)
    return covered
