"""Training's malloc settings: tens-of-MB tensors freed every step are reused, not remapped."""

from __future__ import annotations

import subprocess
import sys

import pytest

from crosskd.train import allocator

#: page faults of three allocations of half the threshold (the size of a text projection's
#: block of weight-gradient rows), each filled, in a fresh process, after the same pattern
#: has run a few times (as steps repeat): with or without the setting
_PROBE = """
import resource, sys, torch
from crosskd.train.allocator import MMAP_THRESHOLD, reuse_freed_memory
if sys.argv[1] == "set":
    assert reuse_freed_memory()
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        tensor = torch.empty(MMAP_THRESHOLD // 2, dtype=torch.uint8)
        tensor.fill_(1)
        del tensor
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
for _ in range(5):  # torch allocates 64-byte aligned: freed chunks fit a repeat once coalesced
    faults()
print(faults())
"""


def _faults(mode: str) -> int:
    run = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True,
                         check=True)
    return int(run.stdout.split()[-1])


@pytest.mark.skipif(not allocator.malloc_options_available(), reason="no glibc mallopt here")
def test_freed_memory_below_the_threshold_is_reused_without_page_faults():
    """With the setting, repeated allocations fault in at most one allocation's pages (where
    the heap grows); without it, every one is mapped afresh."""
    pages = allocator.MMAP_THRESHOLD // 2 // 4096
    assert _faults("set") < 1.5 * pages
    assert _faults("unset") > 2.5 * pages


def test_weight_gradient_blocks_stay_under_the_mmap_threshold():
    """The row blocks of a streamed weight gradient reuse freed heap memory only while they
    are smaller than the threshold training sets (crosskd.ops.cpu_matmul)."""
    import torch
    from crosskd.ops.cpu_matmul import WEIGHT_GRADIENT_BLOCK_BYTES, weight_gradient_block_rows
    assert WEIGHT_GRADIENT_BLOCK_BYTES < allocator.MMAP_THRESHOLD
    weight = torch.empty(768, 44800)
    rows = weight_gradient_block_rows(weight)
    assert rows * 44800 * 4 <= WEIGHT_GRADIENT_BLOCK_BYTES < (rows + 1) * 44800 * 4
