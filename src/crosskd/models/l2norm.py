"""L2 normalisation with a backward of seven operators instead of autograd's fourteen.

The CE+ step normalises 21 embeddings; on a GPU, inside a CUDA graph, each small kernel
costs microseconds whatever its size, so a step pays for the number of them. F.normalize is
x / max(||x||, eps), and autograd differentiates its three operators one by one. Its
derivative in closed form is (g - y <y, g>) / max(||x||, eps), the <y, g> term dropped where
||x|| < eps (there the divisor is the constant eps). The forward is F.normalize's, operator
for operator, so values (and autocast's float32 norm) are unchanged.
"""

from __future__ import annotations

from typing import Any

import torch

#: F.normalize's default epsilon.
EPS = 1e-12


class _L2Normalize(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, dim: int, eps: float) -> torch.Tensor:
        norm = x.norm(2, dim, keepdim=True)
        out = x / norm.clamp_min(eps)
        ctx.save_for_backward(out, norm)
        ctx.dim, ctx.eps = dim, eps
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        out, norm = ctx.saved_tensors
        return l2_normalize_backward(grad, out, norm, (ctx.dim,), ctx.eps), None, None


def l2_normalize_backward(grad: torch.Tensor, out: torch.Tensor, norm: torch.Tensor,
                          dims: tuple[int, ...], eps: float = EPS) -> torch.Tensor:
    """The gradient at x of out = x / max(norm, eps), `norm` being x's L2 norm over `dims`
    (kept): (grad - out <out, grad>) / max(norm, eps), the <out, grad> term dropped where
    norm < eps. Seven operators."""
    along = (grad * out).sum(dims, keepdim=True) * (norm >= eps)
    return torch.addcmul(grad, out, along, value=-1) / norm.clamp_min(eps)


def l2_normalize(x: torch.Tensor, dim: int = 1, eps: float = EPS) -> torch.Tensor:
    """F.normalize(x, dim=dim, eps=eps), with a cheaper backward."""
    return _L2Normalize.apply(x, dim, eps)
