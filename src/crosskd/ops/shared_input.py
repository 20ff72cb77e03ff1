"""Several linear layers on one input (the per-expert text projections), with a faster backward.

Autograd would compute the input gradient as a sum of per-layer products `g_i @ W_i`, each
written to a new buffer. Here they are summed into one buffer: by oneDNN where the layers'
plan names it for their input gradient (crosskd.ops.cpu_matmul.PlannedLinear), otherwise
accumulated in place in the transposed form `W_i^T g_i^T`, which MKL runs about 1.5x faster
for the text projections' shapes. Each layer is called as a module on the input detached, so its own class computes
its output and weight gradient (a runner may have swapped in layers that consume the weight
gradient during backward, crosskd.train.weight_gradients), and its forward hooks run.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from crosskd.ops.cpu_matmul import (ONEDNN, PlannedLinear, input_gradient, onednn_applies,
                                    use_product_plan)
from crosskd.ops.low_precision_copy import autocast_copy


class _InputGradient(torch.autograd.Function):
    """Identity on the layers' outputs whose backward also returns the shared input's gradient.

    Inputs: `x`, whether the input gradient is computed by oneDNN, then the weights (read,
    not differentiated here), then the outputs.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, onednn: bool, *weights_and_outputs: torch.Tensor
                ) -> tuple[torch.Tensor, ...]:
        count = len(weights_and_outputs) // 2
        ctx.set_materialize_grads(False)  # an unused output leaves its layer without gradient
        ctx.save_for_backward(x, *weights_and_outputs[:count])
        ctx.onednn = onednn
        return tuple(out.view_as(out) for out in weights_and_outputs[count:])

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, *grads: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        x, *weights = ctx.saved_tensors
        used = [(w, g) for w, g in zip(weights, grads) if g is not None]
        grad_x = None
        if used and ctx.onednn and onednn_applies(x, *(t for pair in used for t in pair)):
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
        return (grad_x, None, *(None for _ in weights), *grads)


def shared_input_linear(x: torch.Tensor, layers: Sequence[nn.Linear]) -> tuple[torch.Tensor, ...]:
    """Apply every layer to the same `[N, in]` input, its gradient summed in one buffer."""
    if not (torch.is_grad_enabled() and x.requires_grad):
        return tuple(layer(x) for layer in layers)
    detached = x.detach()
    outputs = [layer(detached) for layer in layers]
    onednn = onednn_applies(x) and all(
        isinstance(layer, PlannedLinear)
        and layer.plan.library("input_gradient", x.shape[0], layer.weight) == "onednn"
        for layer in layers)
    weights = [_read_weight(layer) for layer in layers]
    return _InputGradient.apply(x, onednn, *weights, *outputs)


def _read_weight(layer: nn.Linear) -> torch.Tensor:
    """The weight backward multiplies by: the layer's kept low-precision copy under autocast
    where the runtime gave it one (crosskd.ops.low_precision_copy), else the weight."""
    low = autocast_copy(layer)
    return layer.weight if low is None else low


def reference_shared_input_linear(x: torch.Tensor, layers: Sequence[nn.Linear]
                                  ) -> tuple[torch.Tensor, ...]:
    """What shared_input_linear computes: each layer called on `x`."""
    return tuple(layer(x) for layer in layers)


def example(dtype: torch.dtype) -> tuple[torch.Tensor, nn.ModuleList]:
    """Three projections of eight rows (under autocast the input and weights stay float32)."""
    generator = torch.Generator().manual_seed(0)
    dtype = torch.float32 if dtype == torch.bfloat16 else dtype
    layers = nn.ModuleList(nn.Linear(40, 5, dtype=dtype) for _ in range(3))
    with torch.no_grad():
        for param in layers.parameters():
            param.copy_(torch.randn(param.shape, generator=generator))
    return torch.randn(8, 40, generator=generator, dtype=dtype, requires_grad=True), layers


def onednn_example(dtype: torch.dtype) -> tuple[torch.Tensor, nn.ModuleList]:
    """`example`'s projections computed by oneDNN (float32 outside autocast)."""
    x, layers = example(dtype)
    use_product_plan(layers, ONEDNN)
    return x, layers
