"""Float32 linear layers on the CPU through oneDNN's kernels instead of torch's BLAS (MKL).

torch's CPU matrix products go to MKL, which runs its AVX2 code on AMD processors; oneDNN,
which ships inside torch, runs its AVX-512 kernels on any x86 CPU that has them. On the Zen 5
machine of docs/PERFORMANCE.md the MSRVTT text projections run 2.2x faster through it. The
products stay float32 (oneDNN's default fp32 mode: no bfloat16 or TF32 inside); only the
summation order, so the last bits, differs from MKL's.

Which library is faster depends on the CPU and on the shape (on an AVX2-only Zen 3, MKL
wins the 240-caption evaluation products and oneDNN the 64-row training ones), so each
product of a layer asks a `ProductPlan` which library runs it: `ONEDNN` names oneDNN for
every product; a plan measured on the machine (crosskd.inference.product_table) names the
faster one per product, shape and CPU. `PlannedLinear` is nn.Linear (same parameters, same
state dict) computed by `planned_linear`, which takes oneDNN where the plan names it and it
applies (float32 tensors on the CPU, outside autocast and torch.compile) and torch's
products everywhere else. Models are built of plain nn.Linear; whoever runs one swaps its
layers (`use_product_plan`, in place) after building it
(`crosskd.train.runtime.Runtime.prepare_model`). torch offers no public float32 route to
oneDNN's dense linear kernel: `_product` is the one call of the private `torch.ops.mkldnn`
op, and `onednn_available` says whether this torch has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable


#: the products of a linear layer a plan chooses a library for
PRODUCTS = ("forward", "input_gradient", "weight_gradient")
#: the weight gradients of layers at least this large are computed this many bytes of rows at
#: a time where oneDNN computes them (crosskd.train.weight_gradients): under the 64 MB mmap
#: threshold training sets (crosskd.train.allocator), so each block reuses freed heap memory
#: instead of pages mapped and zeroed afresh.
WEIGHT_GRADIENT_BLOCK_BYTES = 48 * 2**20


class ProductPlan(Protocol):
    """Which library computes each product of a linear layer."""

    def library(self, product: str, rows: int, weight: torch.Tensor) -> str:
        """"onednn" or "torch" for `product` (one of PRODUCTS) of a layer with `weight`
        over `rows` input rows."""


@dataclass(frozen=True)
class OneLibrary:
    """A plan that names one library for every product."""

    name: str

    def library(self, product: str, rows: int, weight: torch.Tensor) -> str:
        """This plan's library, whatever the product."""
        return self.name


#: every product on oneDNN (`trainer.cpu_matmul` "onednn")
ONEDNN = OneLibrary("onednn")


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


def linear_product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                   library: str = "onednn") -> torch.Tensor:
    """`F.linear(x, weight, bias)` for inputs of any number of leading dimensions, by oneDNN
    where `library` names it and it applies."""
    if library != "onednn" or not onednn_applies(x, weight, bias):
        return F.linear(x, weight, bias)
    out = _product(x.reshape(-1, x.shape[-1]), weight, bias)
    return out.reshape(*x.shape[:-1], weight.shape[0])


def input_gradient(grad: torch.Tensor, weight: torch.Tensor, library: str = "onednn"
                   ) -> torch.Tensor:
    """`grad @ weight` (a linear layer's input gradient, 2-D), by oneDNN where `library`
    names it and it applies."""
    if library == "onednn" and onednn_applies(grad, weight):
        return _product(grad, weight.t(), None)
    return grad @ weight


def weight_gradient(grad: torch.Tensor, x: torch.Tensor, library: str = "onednn"
                    ) -> torch.Tensor:
    """`grad.T @ x` (a linear layer's weight gradient, 2-D), by oneDNN where `library` names
    it and it applies."""
    if library == "onednn" and onednn_applies(grad, x):
        return _product(grad.t(), x.t(), None)
    return grad.t() @ x


def weight_gradient_block_rows(weight: torch.Tensor) -> int:
    """Rows of `weight`'s gradient per block of WEIGHT_GRADIENT_BLOCK_BYTES."""
    return max(1, WEIGHT_GRADIENT_BLOCK_BYTES // (weight.shape[-1] * weight.element_size()))


class _PlannedLinear(torch.autograd.Function):
    """F.linear with each product, forward and backward, by the library its plan names."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                plan: ProductPlan) -> torch.Tensor:
        ctx.set_materialize_grads(False)  # an unused output leaves the layer without gradient
        ctx.save_for_backward(x, weight)
        ctx.has_bias, ctx.plan = bias is not None, plan
        rows = x.numel() // max(1, x.shape[-1])
        return linear_product(x, weight, bias, plan.library("forward", rows, weight))

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        if grad is None:
            return None, None, None, None
        x, weight = ctx.saved_tensors
        flat = grad.reshape(-1, grad.shape[-1])
        rows, plan = flat.shape[0], ctx.plan
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = input_gradient(flat, weight, plan.library("input_gradient", rows, weight)
                                    ).reshape(x.shape)
        if ctx.needs_input_grad[1]:
            grad_weight = weight_gradient(flat, x.reshape(-1, x.shape[-1]),
                                          plan.library("weight_gradient", rows, weight))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = flat.sum(0)
        return grad_x, grad_weight, grad_bias, None


def planned_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                   plan: ProductPlan = ONEDNN) -> torch.Tensor:
    """`F.linear(x, weight, bias)`, each product by the library `plan` names for it."""
    if not onednn_applies(x, weight, bias):
        return F.linear(x, weight, bias)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                       for t in (x, weight, bias)):
        return _PlannedLinear.apply(x, weight, bias, plan)
    rows = x.numel() // max(1, x.shape[-1])
    return linear_product(x, weight, bias, plan.library("forward", rows, weight))


class PlannedLinear(nn.Linear):
    """nn.Linear (same parameters and state_dict) computed by `planned_linear` with its
    layer's `plan`."""

    plan: ProductPlan = ONEDNN

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x @ weight.T + bias`."""
        return planned_linear(x, self.weight, self.bias, self.plan)


def use_product_plan(model: nn.Module, plan: ProductPlan) -> int:
    """Turn every nn.Linear of `model` into a PlannedLinear computed by `plan`, in place
    (parameters, names, hooks and the optimizer's references stay); returns how many."""
    layers = [module for module in model.modules() if type(module) is nn.Linear]
    for layer in layers:
        layer.__class__ = PlannedLinear
        layer.plan = plan
    return len(layers)


def example(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A `[2, 6, 40]` input, a `[5, 40]` weight and a bias, all needing gradients (under
    autocast they stay float32)."""
    generator = torch.Generator().manual_seed(0)
    dtype = torch.float32 if dtype == torch.bfloat16 else dtype
    return tuple(torch.randn(shape, generator=generator, dtype=dtype).requires_grad_()
                 for shape in ((2, 6, 40), (5, 40), (5,)))
