"""Large linear layers whose weight gradient goes straight to the optimizer inside backward.

With the optimizer stepping inside backward (crosskd.train.backward_step), a gradient lives
from its product to its parameter's update. For the largest layers (the MSRVTT text
projections, 137 MB each) the runner shortens that further: `stream_weight_gradients` turns
each nn.Linear with a weight of at least `MIN_STREAMED_BYTES` into a `StreamedLinear` (in
place: parameters, names and the state dict stay), whose backward

- on oneDNN, where the optimizer offers row updates (`SinglePassRAdam.row_updates`) and the
  layer was called once in the step (its gradient is then this product alone), computes the
  weight gradient `ROW_BLOCK_BYTES` of rows at a time and hands each block to the update
  while it is in cache: the gradient is never assembled;
- otherwise writes the gradient, by torch's product (oneDNN writes fresh memory only), into
  the buffer the previous such gradient left (`GradientBuffers`), which spares mapping,
  zeroing and unmapping a fresh one every time.

Through MKL the blocks are slower than the whole product into a recycled buffer (its
products of a few hundred rows run at half its rate), hence the split by library.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from crosskd.ops.cpu_matmul import (OneDnnLinear, input_gradient, onednn_applies, onednn_linear,
                                    weight_gradient)
from crosskd.train.allocator import MMAP_THRESHOLD
from crosskd.train.backward_step import GradientBuffers

#: layers with a weight of at least this many bytes are streamed (MSRVTT CE+: the seven text
#: projections and the 5,700-wide video projection); smaller gradients are cheap to allocate.
MIN_STREAMED_BYTES = GradientBuffers.MIN_KEPT_BYTES
#: the size of the blocks of rows of a weight gradient that go to the update one by one:
#: under the mmap threshold training sets (crosskd.train.allocator), so each block reuses
#: freed heap memory instead of pages mapped and zeroed afresh.
ROW_BLOCK_BYTES = MMAP_THRESHOLD * 3 // 4


def _update_by_rows(buffers: GradientBuffers, weight: torch.Tensor, grad: torch.Tensor,
                    x: torch.Tensor) -> bool:
    """Compute the weight gradient `grad.T @ x` a block of rows at a time by oneDNN, handing
    each block to the optimizer's update; False, with nothing done, where the optimizer
    offers no row updates for `weight` or oneDNN cannot compute the products."""
    if not onednn_applies(grad, x):
        return False
    update = buffers.row_updates(weight)
    if update is None:
        return False
    rows = max(1, ROW_BLOCK_BYTES // (x.shape[1] * x.element_size()))
    for start in range(0, weight.shape[0], rows):
        update(start, weight_gradient(grad[:, start:start + rows], x))
    return True


class _StreamedLinear(torch.autograd.Function):
    """`F.linear(x, W, b)` whose weight gradient goes to the update or a recycled buffer."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                layer: _Streamed) -> torch.Tensor:
        ctx.set_materialize_grads(False)  # an unused output leaves the layer without gradient
        ctx.save_for_backward(x)
        ctx.weight = weight  # the row updates change it in place, after its last read here
        ctx.layer, ctx.has_bias = layer, bias is not None
        layer.called()
        if isinstance(layer, OneDnnLinear):
            return onednn_linear(x, weight, bias)
        return F.linear(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        only_call = ctx.layer.differentiated()
        if grad is None:
            return None, None, None, None
        (x,) = ctx.saved_tensors
        weight, onednn = ctx.weight, isinstance(ctx.layer, OneDnnLinear)
        flat = grad.reshape(-1, grad.shape[-1])
        rows = x.reshape(-1, x.shape[-1])
        grad_x = None
        if ctx.needs_input_grad[0]:  # under autocast in the gradient's precision
            matrix = weight.to(flat.dtype)
            product = input_gradient(flat, matrix) if onednn else flat @ matrix
            grad_x = product.reshape(x.shape).to(x.dtype)
        grad_bias = (flat.sum(0).to(weight.dtype) if ctx.has_bias and ctx.needs_input_grad[2]
                     else None)
        grad_weight = (_weight_gradient(ctx.layer.buffers, weight, flat, rows,
                                        onednn and only_call)
                       if ctx.needs_input_grad[1] else None)
        return grad_x, grad_weight, grad_bias, None


def _weight_gradient(buffers: GradientBuffers, weight: torch.Tensor, grad: torch.Tensor,
                     x: torch.Tensor, by_rows: bool) -> torch.Tensor | None:
    """A layer's weight gradient, or None where `by_rows` and the optimizer took it a block
    of rows at a time (the weight is then left without gradient)."""
    if grad.dtype != weight.dtype:  # autocast: in the output's precision, as autocast's linear
        return (grad.t() @ x.to(grad.dtype)).to(weight.dtype)
    if by_rows and _update_by_rows(buffers, weight, grad, x):
        return None
    return torch.mm(grad.t(), x, out=buffers.take(weight.shape, weight.dtype, weight.device))


class _Streamed(nn.Linear):
    """What both streamed classes share: the buffers, the forward through _StreamedLinear,
    and the count of its calls in the step, which says whether a product is the gradient."""

    buffers: GradientBuffers
    #: calls whose backward has not run, and calls since there were none open
    _open: int = 0
    _calls: int = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x @ weight.T + bias`; in backward the weight gradient goes to `buffers`."""
        if not (torch.is_grad_enabled() and self.weight.requires_grad):
            return super().forward(x)
        return _StreamedLinear.apply(x, self.weight, self.bias, self)

    def called(self) -> None:
        """Count a differentiable call."""
        self._calls = 1 if self._open == 0 else self._calls + 1
        self._open += 1

    def differentiated(self) -> bool:
        """Count a call's backward; True when that call was the only one in its step."""
        only = self._calls == 1
        self._open -= 1
        return only


class StreamedLinear(_Streamed):
    """nn.Linear, products by torch, weight gradient into a recycled buffer."""


class StreamedOneDnnLinear(_Streamed, OneDnnLinear):
    """OneDnnLinear whose weight gradient goes to the optimizer's row updates where offered."""


def stream_weight_gradients(model: nn.Module, buffers: GradientBuffers) -> list[nn.Linear]:
    """Turn `model`'s linear layers of at least MIN_STREAMED_BYTES of weight into streamed
    ones (in place; a OneDnnLinear keeps its library); returns them."""
    layers = [module for module in model.modules() if type(module) in (nn.Linear, OneDnnLinear)
              and module.weight.nbytes >= MIN_STREAMED_BYTES]
    for layer in layers:
        layer.__class__ = StreamedOneDnnLinear if isinstance(layer, OneDnnLinear) else StreamedLinear
        layer.buffers = buffers
    return layers
