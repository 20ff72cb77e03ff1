"""Float32 linear layers on the CPU through oneDNN's kernels instead of torch's BLAS (MKL).

torch's CPU matrix products go to MKL, which runs its AVX2 code on AMD processors; oneDNN,
which ships inside torch, runs its AVX-512 kernels on any x86 CPU that has them. On the Zen 5
machine of docs/PERFORMANCE.md the MSRVTT text projections run 2.2x faster through it. The
products stay float32 (oneDNN's default fp32 mode: no bfloat16 or TF32 inside); only the
summation order, so the last bits, differs from MKL's.

`OneDnnLinear` is nn.Linear (same parameters, same state dict) computed by `onednn_linear`,
which takes oneDNN where it applies (float32 tensors on the CPU, outside autocast and
torch.compile) and `torch.nn.functional.linear` everywhere else. Models are built of plain
nn.Linear; whoever runs one swaps its layers (`use_onednn`, in place) after building it
(`crosskd.train.runtime.Runtime.prepare_model`). torch offers no public float32 route to
oneDNN's dense linear kernel: `_product` is the one call of the private `torch.ops.mkldnn`
op, and `onednn_available` says whether this torch has it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable


def onednn_available() -> bool:
    """True where this torch has oneDNN and its dense linear kernel."""
    return (torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


def _cpu_autocast_enabled() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4 takes no device type
        return torch.is_autocast_cpu_enabled()


def onednn_applies(*tensors: torch.Tensor | None) -> bool:
    """True when oneDNN can compute products of these tensors: this torch has it, they are
    float32 on the CPU, and neither autocast nor torch.compile is at work."""
    return (onednn_available() and not _cpu_autocast_enabled()
            and not torch.compiler.is_compiling()
            and all(t.device.type == "cpu" and t.dtype == torch.float32 and t.layout == torch.strided
                    for t in tensors if t is not None))


def _product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`x @ weight.T + bias` for a 2-D `x`, by oneDNN (`weight` may be a transposed view).

    Any other strides (a slice of a wider weight) are copied first: oneDNN runs its
    reference kernel on them, ~1000x slower."""
    if not (weight.is_contiguous() or weight.t().is_contiguous()):
        weight = weight.contiguous()
    return torch.ops.mkldnn._linear_pointwise(x.contiguous(), weight, bias, "none", [], "")


def _onednn_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
                    ) -> torch.Tensor:
    """F.linear by oneDNN, for inputs of any number of leading dimensions."""
    out = _product(x.reshape(-1, x.shape[-1]), weight, bias)
    return out.reshape(*x.shape[:-1], weight.shape[0])


def input_gradient(grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """`grad @ weight` (a linear layer's input gradient, 2-D), by oneDNN where it applies."""
    if onednn_applies(grad, weight):
        return _product(grad, weight.t(), None)
    return grad @ weight


def weight_gradient(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`grad.T @ x` (a linear layer's weight gradient, 2-D), by oneDNN where it applies."""
    if onednn_applies(grad, x):
        return _product(grad.t(), x.t(), None)
    return grad.t() @ x


class _OneDnnLinear(torch.autograd.Function):
    """F.linear with forward and backward products by oneDNN (float32 on the CPU)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
                ) -> torch.Tensor:
        ctx.set_materialize_grads(False)  # an unused output leaves the layer without gradient
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn_forward(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor | None
                 ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        if grad is None:
            return None, None, None
        x, weight = ctx.saved_tensors
        flat = grad.reshape(-1, grad.shape[-1])
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = input_gradient(flat, weight).reshape(x.shape)
        if ctx.needs_input_grad[1]:
            grad_weight = weight_gradient(flat, x.reshape(-1, x.shape[-1]))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = flat.sum(0)
        return grad_x, grad_weight, grad_bias


def onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
                  ) -> torch.Tensor:
    """`F.linear(x, weight, bias)`, by oneDNN where it applies."""
    if not onednn_applies(x, weight, bias):
        return F.linear(x, weight, bias)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                       for t in (x, weight, bias)):
        return _OneDnnLinear.apply(x, weight, bias)
    return _onednn_forward(x, weight, bias)


class OneDnnLinear(nn.Linear):
    """nn.Linear (same parameters and state_dict) computed by `onednn_linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x @ weight.T + bias`."""
        return onednn_linear(x, self.weight, self.bias)


def use_onednn(model: nn.Module) -> int:
    """Turn every nn.Linear of `model` into a OneDnnLinear, in place (parameters, names,
    hooks and the optimizer's references stay); returns how many."""
    layers = [module for module in model.modules() if type(module) is nn.Linear]
    for layer in layers:
        layer.__class__ = OneDnnLinear
    return len(layers)


def example(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A `[2, 6, 40]` input, a `[5, 40]` weight and a bias, all needing gradients (under
    autocast they stay float32)."""
    generator = torch.Generator().manual_seed(0)
    dtype = torch.float32 if dtype == torch.bfloat16 else dtype
    return tuple(torch.randn(shape, generator=generator, dtype=dtype).requires_grad_()
                 for shape in ((2, 6, 40), (5, 40), (5,)))
