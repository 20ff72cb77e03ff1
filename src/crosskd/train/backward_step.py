"""Run the optimizer inside the backward pass, each parameter as soon as its gradient is ready.

Holding every gradient until backward ends costs a full extra copy of the weights (0.98 GiB
for MSRVTT CE+ on the CPU). Here a hook on each parameter steps the optimizer the moment
that parameter's gradient is complete and then frees the gradient, so at most one large
gradient exists at a time; handed back to a `GradientBuffers`, it is the buffer the next
large layer's gradient is written into (crosskd.train.weight_gradients), which spares
mapping, zeroing and unmapping a fresh one every time. Where the optimizer can update a
weight a block of rows at a time (`SinglePassRAdam.row_updates`), a large layer's gradient
is not even assembled: each block is computed and applied while it is in cache.

The update of every optimizer we build is elementwise per parameter, so stepping parameters
one by one gives the weights and optimizer state of one step after backward, bit for bit;
the optimizer, its scheduler and its checkpoints are the usual ones.
"""

from __future__ import annotations

import weakref
from typing import Callable

import torch

_Key = tuple[tuple[int, ...], torch.dtype, torch.device]


class GradientBuffers:
    """Consumed gradients kept for reuse, one per shape, and the optimizer's row updates.

    Owned by the runner that consumes gradients during backward: its large layers take
    buffers from it (crosskd.train.weight_gradients), `step_during_backward` gives them back.
    """

    #: gradients smaller than this are not kept: freeing and allocating them again is cheap,
    #: and keeping one of every parameter's shape held ~40 MB more at MSRVTT size.
    MIN_KEPT_BYTES = 16 * 2**20

    def __init__(self, min_kept_bytes: int = MIN_KEPT_BYTES,
                 optimizer: torch.optim.Optimizer | None = None) -> None:
        self.min_kept_bytes = min_kept_bytes
        self._free: dict[_Key, torch.Tensor] = {}
        #: the optimizer stepped during backward, held weakly (see step_during_backward)
        self._optimizer = weakref.ref(optimizer) if optimizer is not None else lambda: None

    def row_updates(self, param: torch.Tensor) -> Callable[[int, torch.Tensor], None] | None:
        """The optimizer's update of `param` a block of rows at a time, where it offers one
        (crosskd.optim.fast_radam.SinglePassRAdam.row_updates) for this step; else None."""
        offer = getattr(self._optimizer(), "row_updates", None)
        return offer(param) if offer is not None else None

    @staticmethod
    def _key(shape: torch.Size | tuple[int, ...], dtype: torch.dtype,
             device: torch.device) -> _Key:
        return tuple(shape), dtype, torch.device(device)

    def take(self, shape: torch.Size | tuple[int, ...], dtype: torch.dtype,
             device: torch.device) -> torch.Tensor:
        """An uninitialised tensor to write a gradient into: a recycled one when available."""
        recycled = self._free.pop(self._key(shape, dtype, device), None)
        return recycled if recycled is not None else torch.empty(shape, dtype=dtype,
                                                                 device=device)

    def give_back(self, gradient: torch.Tensor) -> None:
        """Offer a gradient that nothing else refers to any more (one is kept per shape, for
        gradients of at least `min_kept_bytes`)."""
        if (gradient._base is None and gradient.is_contiguous()
                and gradient.nbytes >= self.min_kept_bytes):
            self._free.setdefault(self._key(gradient.shape, gradient.dtype, gradient.device),
                                  gradient)

    def clear(self) -> None:
        """Free the kept buffers (validation needs none of them)."""
        self._free.clear()


def step_during_backward(optimizer: torch.optim.Optimizer,
                         buffers: GradientBuffers | None = None) -> None:
    """Make backward step `optimizer`, one parameter at a time, and free each gradient
    (handing it to `buffers`, if given).

    Needs every gradient to be None when backward starts (`zero_grad(set_to_none=True)`):
    each hook then finds its parameter the only one holding a gradient, so `step()` moves
    that parameter alone. The hooks hold the optimizer weakly, so it is freed with its owner
    (its moments are as large as two copies of the weights); after that, backward leaves
    gradients as usual.
    """
    owner = weakref.ref(optimizer)

    def step(param: torch.Tensor) -> None:
        live = owner()
        # no gradient: its update was applied during backward (GradientBuffers.row_updates)
        if live is not None and param.grad is not None:
            live.step()
            if buffers is not None:
                buffers.give_back(param.grad)
            param.grad = None

    for group in optimizer.param_groups:
        for param in group["params"]:
            param.register_post_accumulate_grad_hook(step)
