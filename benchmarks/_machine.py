"""Machine-level helpers shared by the benchmarks: matmul throughput, load, allocator settings."""

from __future__ import annotations

import os
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from crosskd.cpu import cpu_description  # noqa: F401  (re-exported for the benchmarks)
from crosskd.ops import cpu_matmul
from crosskd.train.allocator import M_MMAP_MAX, M_TRIM_THRESHOLD, set_malloc_options


def matmul_gflops(size: int = 2048, seconds: float = 2.0, library: str = "torch") -> float:
    """fp32 GFLOP/s of a size x size matmul loop with torch's current thread count, through
    torch's matmul (MKL on x86) or oneDNN's (`library` "onednn", crosskd.ops.cpu_matmul)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    if library == "onednn":
        def product() -> torch.Tensor:
            return torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], "")
    else:
        def product() -> torch.Tensor:
            return a @ b
    for _ in range(2):
        product()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        product()
        count += 1
    return 2 * size ** 3 * count / (time.perf_counter() - start) / 1e9


def matmul_libraries() -> tuple[str, ...]:
    """The CPU matmul libraries this torch offers crosskd (crosskd.ops.cpu_matmul)."""
    return ("torch", "onednn") if cpu_matmul.onednn_available() else ("torch",)


def load_average() -> float:
    """The 1-minute load average (other processes competing for the cores)."""
    return os.getloadavg()[0]


def retain_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the kernel.

    Tensors above 32 MB (e.g. the 137 MB gradient of each text projection) are otherwise
    mmap-ed afresh on every step and every page is faulted in and zeroed again, which costs
    about 0.4 s per GB. Returns False where glibc's mallopt is not available.
    """
    return set_malloc_options({M_MMAP_MAX: 0, M_TRIM_THRESHOLD: 2**31 - 1})


def _addmm_flops(bias_shape, left_shape, right_shape, out_shape=None, **kwargs) -> int:
    """FLOPs of the in-place addmm_ (which FlopCounterMode does not know) as of addmm."""
    return 2 * left_shape[0] * left_shape[1] * right_shape[1]


def _onednn_linear_flops(input_shape, weight_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of oneDNN's linear (crosskd.ops.cpu_matmul): input [M, K] x weight [N, K]."""
    return 2 * input_shape[0] * input_shape[1] * weight_shape[0]


def flop_counter() -> FlopCounterMode:
    """FlopCounterMode that also counts the in-place addmm_ of the text projections' backward
    and oneDNN's linear products."""
    mapping = {torch.ops.aten.addmm_: _addmm_flops}
    if cpu_matmul.onednn_available():
        mapping[torch.ops.mkldnn._linear_pointwise] = _onednn_linear_flops
    return FlopCounterMode(display=False, custom_mapping=mapping)
