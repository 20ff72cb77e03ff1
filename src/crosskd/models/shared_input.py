"""Several linear layers on one input (the per-expert text projections), with a faster backward.

Autograd would compute the input gradient as a sum of per-layer products `g_i @ W_i`, each
written to a new buffer. Here they accumulate in place into one buffer, in the transposed
form `W_i^T g_i^T`, which MKL runs about 1.5x faster for these shapes (N=64 rows, 768
outputs, 44,800 inputs); the forward pass and the weight gradients are the usual ones.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable


class _SharedInputLinear(torch.autograd.Function):
    """`F.linear(x, W_i, b_i)` for every i, as one autograd node."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, *weights_and_biases: torch.Tensor
                ) -> tuple[torch.Tensor, ...]:
        count = len(weights_and_biases) // 2
        weights, biases = weights_and_biases[:count], weights_and_biases[count:]
        ctx.save_for_backward(x, *weights)
        return tuple(F.linear(x, w, b) for w, b in zip(weights, biases))

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, *weights = ctx.saved_tensors
        needs = ctx.needs_input_grad
        # Under autocast the outputs (hence grads) are bf16/fp16 while x and the weights
        # stay fp32: compute in the grads' dtype, as autocast's own linear backward does,
        # and return each gradient in its input's dtype (all no-ops without autocast).
        compute = grads[0].dtype
        x_c = x.to(compute)
        weights_c = [w.to(compute) for w in weights]
        grad_x = None
        if needs[0]:
            grad_x_t = weights_c[0].t() @ grads[0].t()  # [in, N]
            for w, g in zip(weights_c[1:], grads[1:]):
                grad_x_t.addmm_(w.t(), g.t())
            grad_x = grad_x_t.t().to(x.dtype)
        count = len(weights)
        grad_w = [(g.t() @ x_c).to(w.dtype) if needs[1 + i] else None
                  for i, (g, w) in enumerate(zip(grads, weights))]
        grad_b = [g.sum(0).to(w.dtype) if needs[1 + count + i] else None
                  for i, (g, w) in enumerate(zip(grads, weights))]
        return (grad_x, *grad_w, *grad_b)


def shared_input_linear(x: torch.Tensor, layers: Sequence[nn.Linear]) -> tuple[torch.Tensor, ...]:
    """Apply every layer (all with a bias) to the same `[N, in]` input."""
    return _SharedInputLinear.apply(x, *(layer.weight for layer in layers),
                                    *(layer.bias for layer in layers))
