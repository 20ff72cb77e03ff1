"""Several linear layers on one input (the per-expert text projections), with a faster backward.

Autograd would compute the input gradient as a sum of per-layer products `g_i @ W_i`, each
written to a new buffer. Here they are summed into one buffer: by oneDNN where it is the
float32 CPU backend (crosskd.ops.cpu_matmul), otherwise accumulated in place in the
transposed form `W_i^T g_i^T`, which MKL runs about 1.5x faster for the text projections'
shapes. Each
layer's weight gradient stays its own autograd node, so a runner can consume a gradient
before the next one is computed (crosskd.train.backward_step) and hand its buffer back to
be written again: pass that runner's buffers as `buffers`.
Without gradients, the layers are called as modules, so their forward hooks run
(crosskd.checkpoint.paging releases each weight's pages after use).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from crosskd.ops.cpu_matmul import (Linear, onednn_applies, input_gradient, linear,
                                    weight_gradient)


class RecycledBuffers(Protocol):
    """Where weight gradients go: a recycled tensor of that shape, or straight into the
    optimizer's update a block of rows at a time."""

    def take(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """An uninitialised `shape` tensor that nothing else uses."""
        ...

    def row_updates(self, param: torch.Tensor) -> Callable[[int, torch.Tensor], None] | None:
        """A function applying this step's update to rows `start:start + len(grad)` of
        `param` from their gradient, or None (then the gradient is assembled as usual)."""
        ...


class _InputGradient(torch.autograd.Function):
    """Identity on the layers' outputs whose backward also returns the shared input's gradient.

    Inputs: `x`, then the weights (read, not differentiated here), then the outputs.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, *weights_and_outputs: torch.Tensor
                ) -> tuple[torch.Tensor, ...]:
        count = len(weights_and_outputs) // 2
        ctx.set_materialize_grads(False)  # an unused output leaves its layer without gradient
        ctx.save_for_backward(x, *weights_and_outputs[:count])
        return tuple(out.view_as(out) for out in weights_and_outputs[count:])

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, *grads: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        x, *weights = ctx.saved_tensors
        used = [(w, g) for w, g in zip(weights, grads) if g is not None]
        grad_x = None
        if used and onednn_applies(x, *(t for pair in used for t in pair)):
            grad_x = input_gradient(used[0][1], used[0][0])
            for w, g in used[1:]:
                grad_x += input_gradient(g, w)
        elif used:
            # Under autocast the grads are bf16/fp16 while x and the weights stay fp32:
            # compute in the grads' dtype, as autocast's own linear backward does.
            compute = used[0][1].dtype
            grad_x_t = used[0][0].to(compute).t() @ used[0][1].t()  # [in, N]
            for w, g in used[1:]:
                grad_x_t.addmm_(w.to(compute).t(), g.t())
            grad_x = grad_x_t.t().to(x.dtype)
        return (grad_x, *(None for _ in weights), *grads)


#: the size of the blocks of rows of a weight gradient that go to the optimizer one by one:
#: under the mmap threshold training sets (crosskd.train.allocator), so each block reuses
#: freed heap memory instead of pages mapped and zeroed afresh.
ROW_BLOCK_BYTES = 48 * 2**20


def _update_by_rows(buffers: RecycledBuffers | None, weight: torch.Tensor, grad: torch.Tensor,
                    x: torch.Tensor) -> bool:
    """Compute the weight gradient `grad.T @ x` a block of rows at a time, handing each block
    to the optimizer's update while it is in cache; False, with nothing done, where `buffers`
    offers no row updates for `weight`, or where oneDNN does not compute the products (MKL's
    products of a few hundred rows run at half its rate: writing the whole gradient into a
    recycled buffer is faster there)."""
    if not onednn_applies(grad, x):
        return False
    update = buffers.row_updates(weight) if buffers is not None else None
    if update is None:
        return False
    rows = max(1, ROW_BLOCK_BYTES // (x.shape[1] * x.element_size()))
    for start in range(0, weight.shape[0], rows):
        update(start, weight_gradient(grad[:, start:start + rows], x))
    return True


class _LinearRecycledWeightGradient(torch.autograd.Function):
    """`linear(x, W, b)` for an `x` that needs no gradient; the weight gradient goes straight
    into the optimizer's update where `buffers` offers row updates, else is written into a
    buffer taken from `buffers`, if given, when it has the weight's dtype."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                buffers: RecycledBuffers | None) -> torch.Tensor:
        ctx.set_materialize_grads(False)  # an unused output leaves the layer without gradient
        ctx.save_for_backward(x)
        ctx.weight_meta = (weight.shape, weight.dtype, weight.device)
        ctx.weight = weight  # for the optimizer's row updates, which change it in place
        ctx.buffers = buffers
        return linear(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor | None
                 ) -> tuple[None, torch.Tensor | None, torch.Tensor | None, None]:
        if grad is None:
            return None, None, None, None
        (x,) = ctx.saved_tensors
        grad_weight = _weight_gradient(ctx, grad, x) if ctx.needs_input_grad[1] else None
        grad_bias = grad.sum(0).to(ctx.weight_meta[1]) if ctx.needs_input_grad[2] else None
        return None, grad_weight, grad_bias, None


def _weight_gradient(ctx: Any, grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor | None:
    """A layer's weight gradient, or None where the optimizer took it a block of rows at a
    time (the weight is then left without gradient)."""
    shape, dtype, device = ctx.weight_meta
    if grad.dtype != dtype:  # autocast: products in the output's precision, as autocast's linear
        return (grad.t() @ x.to(grad.dtype)).to(dtype)
    if _update_by_rows(ctx.buffers, ctx.weight, grad, x):
        return None
    if ctx.buffers is None:
        return weight_gradient(grad, x)
    # oneDNN writes fresh memory only: MKL into the recycled buffer
    return torch.mm(grad.t(), x, out=ctx.buffers.take(shape, dtype, device))


def shared_input_linear(x: torch.Tensor, layers: Sequence[nn.Linear],
                        buffers: RecycledBuffers | None = None) -> tuple[torch.Tensor, ...]:
    """Apply every layer (all with a bias) to the same `[N, in]` input; the weight gradients
    are written into buffers taken from `buffers` (fresh ones without)."""
    if not (torch.is_grad_enabled() and x.requires_grad):
        return tuple(layer(x) for layer in layers)
    outputs = [_LinearRecycledWeightGradient.apply(x.detach(), layer.weight, layer.bias, buffers)
               for layer in layers]
    return _InputGradient.apply(x, *(layer.weight for layer in layers), *outputs)


def reference_shared_input_linear(x: torch.Tensor, layers: Sequence[nn.Linear]
                                  ) -> tuple[torch.Tensor, ...]:
    """What shared_input_linear computes: each layer called on `x`."""
    return tuple(layer(x) for layer in layers)


def example(dtype: torch.dtype) -> tuple[torch.Tensor, nn.ModuleList]:
    """Three projections of eight rows (under autocast the input and weights stay float32)."""
    generator = torch.Generator().manual_seed(0)
    dtype = torch.float32 if dtype == torch.bfloat16 else dtype
    layers = nn.ModuleList(Linear(40, 5, dtype=dtype) for _ in range(3))
    with torch.no_grad():
        for param in layers.parameters():
            param.copy_(torch.randn(param.shape, generator=generator))
    return torch.randn(8, 40, generator=generator, dtype=dtype, requires_grad=True), layers
