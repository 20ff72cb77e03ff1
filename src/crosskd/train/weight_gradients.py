"""Large linear layers whose weight gradient goes straight to the optimizer inside backward.

With the optimizer stepping inside backward (crosskd.train.backward_step), a gradient lives
from its product to its parameter's update. For the largest layers (the MSRVTT text
projections, 137 MB each) the runner shortens that further: `stream_weight_gradients` turns
each nn.Linear with a weight of at least `MIN_STREAMED_BYTES` into a `StreamedLinear` (in
place: parameters, names and the state dict stay), whose backward

- where its plan names oneDNN for the weight gradient, the optimizer offers row updates
  (`SinglePassRAdam.row_updates`) and the layer was called once in the step (its gradient
  is then this product alone), computes the weight gradient
  `WEIGHT_GRADIENT_BLOCK_BYTES` of rows at a time and hands each block to the update while
  it is in cache: the gradient is never assembled;
- otherwise writes the gradient, by torch's product (oneDNN writes fresh memory only), into
  the buffer the previous such gradient left (`GradientBuffers`), which spares mapping,
  zeroing and unmapping a fresh one every time.

The layer's plan (crosskd.ops.cpu_matmul) times the two ways on the machine
(crosskd.inference.product_table): on the Zen 5 of docs/PERFORMANCE.md MKL's blocks ran at
half its rate, and the blocks by oneDNN won.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from crosskd.ops.cpu_matmul import (PlannedLinear, input_gradient, onednn_applies,
                                    planned_linear, weight_gradient, weight_gradient_block_rows)
from crosskd.ops.low_precision_copy import LowPrecisionCopy, autocast_copy, weight_in
from crosskd.train.backward_step import GradientBuffers

#: layers with a weight of at least this many bytes are streamed (MSRVTT CE+: the seven text
#: projections and the 5,700-wide video projection); smaller gradients are cheap to allocate.
MIN_STREAMED_BYTES = GradientBuffers.MIN_KEPT_BYTES


def _update_by_rows(layer: _Streamed, weight: torch.Tensor, grad: torch.Tensor,
                    x: torch.Tensor) -> bool:
    """Compute the weight gradient `grad.T @ x` a block of rows at a time, handing each block
    to the optimizer's update (and refreshing those rows of the layer's low-precision copy);
    False, with nothing done, where the optimizer offers no row updates for `weight`, or
    float32 products cannot run on oneDNN.

    Under autocast (`grad` in bfloat16) each block is a bfloat16 product, as autocast's own
    weight gradient is, cast to the weight's float32 for the update."""
    low_precision = grad.dtype != weight.dtype
    if not (low_precision or onednn_applies(grad, x)):
        return False
    update = layer.buffers.row_updates(weight)
    if update is None:
        return False
    copy = getattr(layer, "low_copy", None)
    x = x.to(grad.dtype)
    rows = weight_gradient_block_rows(weight)
    for start in range(0, weight.shape[0], rows):
        block = grad[:, start:start + rows]
        update(start, (block.t() @ x).to(weight.dtype) if low_precision
               else weight_gradient(block, x, "onednn"))
        if copy is not None:
            copy.refresh_rows(weight, slice(start, start + rows))
    if copy is not None:
        copy.settled(weight)
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
        low = autocast_copy(layer)
        if low is not None:
            return F.linear(x.to(low.dtype), low, bias)
        if isinstance(layer, PlannedLinear):
            return planned_linear(x, weight, bias, layer.plan)
        return F.linear(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        only_call = ctx.layer.differentiated()
        if grad is None:
            return None, None, None, None
        (x,) = ctx.saved_tensors
        weight, layer = ctx.weight, ctx.layer
        flat = grad.reshape(-1, grad.shape[-1])
        rows = x.reshape(-1, x.shape[-1])
        grad_x = None
        if ctx.needs_input_grad[0]:  # under autocast in the gradient's precision
            grad_x = input_gradient(flat, weight_in(layer, flat.dtype),
                                    _library(layer, "input_gradient", flat)
                                    ).reshape(x.shape).to(x.dtype)
        grad_bias = (flat.sum(0).to(weight.dtype) if ctx.has_bias and ctx.needs_input_grad[2]
                     else None)
        by_rows = only_call and (flat.dtype != weight.dtype
                                 or _library(layer, "weight_gradient", flat) == "onednn")
        grad_weight = (_weight_gradient(layer, weight, flat, rows, by_rows)
                       if ctx.needs_input_grad[1] else None)
        return grad_x, grad_weight, grad_bias, None


def _library(layer: nn.Linear, product: str, grad: torch.Tensor) -> str:
    """The library `layer`'s plan names for `product` over `grad`'s rows ("torch" for a
    layer without a plan, and under autocast, where no float32 product runs)."""
    if not isinstance(layer, PlannedLinear) or grad.dtype != layer.weight.dtype:
        return "torch"
    return layer.plan.library(product, grad.shape[0], layer.weight)


def _weight_gradient(layer: _Streamed, weight: torch.Tensor, grad: torch.Tensor,
                     x: torch.Tensor, by_rows: bool) -> torch.Tensor | None:
    """A layer's weight gradient, or None where `by_rows` and the optimizer took it a block
    of rows at a time (the weight is then left without gradient)."""
    if by_rows and _update_by_rows(layer, weight, grad, x):
        return None
    if grad.dtype != weight.dtype:  # autocast: in the output's precision, as autocast's linear
        return (grad.t() @ x.to(grad.dtype)).to(weight.dtype)
    return torch.mm(grad.t(), x, out=layer.buffers.take(weight.shape, weight.dtype,
                                                        weight.device))


class _Streamed(nn.Linear):
    """What both streamed classes share: the buffers, the forward through _StreamedLinear,
    and the count of its calls in the step, which says whether a product is the gradient."""

    buffers: GradientBuffers
    #: the weight's bfloat16 copy under CPU autocast (`keep_low_precision_copies`), or None
    low_copy: LowPrecisionCopy | None = None
    #: calls whose backward has not run, and calls since there were none open
    _open: int = 0
    _calls: int = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x @ weight.T + bias`; in backward the weight gradient goes to `buffers`."""
        if not (torch.is_grad_enabled() and self.weight.requires_grad):
            low = autocast_copy(self)
            return super().forward(x) if low is None else F.linear(x, low, self.bias)
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


class StreamedPlannedLinear(_Streamed, PlannedLinear):
    """PlannedLinear whose weight gradient goes to the optimizer's row updates where its plan
    names oneDNN for it and the optimizer offers them."""


def stream_weight_gradients(model: nn.Module, buffers: GradientBuffers) -> list[nn.Linear]:
    """Turn `model`'s linear layers of at least MIN_STREAMED_BYTES of weight into streamed
    ones (in place; a PlannedLinear keeps its plan); returns them."""
    layers = [module for module in model.modules() if type(module) in (nn.Linear, PlannedLinear)
              and module.weight.nbytes >= MIN_STREAMED_BYTES]
    for layer in layers:
        layer.__class__ = (StreamedPlannedLinear if isinstance(layer, PlannedLinear)
                           else StreamedLinear)
        layer.buffers = buffers
    return layers


def keep_low_precision_copies(layers: list[nn.Linear], dtype: torch.dtype) -> None:
    """Give streamed `layers` a kept copy of their weight in `dtype` for CPU autocast
    (crosskd.ops.low_precision_copy), refreshed by the row updates."""
    for layer in layers:
        layer.low_copy = LowPrecisionCopy(dtype)
