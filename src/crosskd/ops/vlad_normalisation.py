"""NetVLAD's two normalisations (each cluster's residual, then the flattened vector) fused.

After the first normalisation cluster k's norm is n_k / max(n_k, eps), so the second needs
the per-cluster norms only, and the residuals are read twice instead of four times. With y
the output, g its gradient, s_k = <y_k, g_k> per cluster, s = sum_k s_k, t the second
divisor and r_k = n_k / max(n_k, eps), chaining the two normalisations' derivatives gives

    (g - y * (s + t^2 s_k - s r_k^2)) / (max(n_k, eps) * t),

with s dropped where t is eps and the cluster term where n_k < eps: four passes over the
residuals where autograd, differentiating the divisors' operators one by one, makes about ten.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from crosskd.ops.l2norm import EPS


def _cluster_norms(residuals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each cluster's norm `[B, 1, K]`, its divisor max(norm, eps), and the second
    normalisation's divisor `[B, 1, 1]`. (`Tensor.norm` is float32 under autocast, as in
    F.normalize.)"""
    norms = residuals.norm(dim=1, keepdim=True)
    clusters = norms.clamp_min(EPS)
    return norms, clusters, (norms / clusters).norm(dim=2, keepdim=True).clamp_min(EPS)


class _NormalisedResiduals(torch.autograd.Function):
    """residuals / (max(n_k, eps) * t), with the backward above."""

    @staticmethod
    def forward(ctx: Any, residuals: torch.Tensor) -> torch.Tensor:
        norms, clusters, total = _cluster_norms(residuals)
        divisor = clusters * total
        out = residuals / divisor
        ctx.save_for_backward(out, norms, clusters, total, divisor)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        out, norms, clusters, total, divisor = ctx.saved_tensors
        per_cluster = (grad * out).sum(1, keepdim=True)
        overall = per_cluster.sum(2, keepdim=True) * (total > EPS)
        after_first = (norms / clusters).square()
        coefficient = overall + (clusters > EPS) * (
            total.square() * per_cluster - overall * after_first)
        return torch.addcmul(grad, out, coefficient, value=-1) / divisor


def vlad_normalise(residuals: torch.Tensor) -> torch.Tensor:
    """Residuals `[B, D, K]` L2-normalised per cluster (over D), then as one `D * K` vector.

    Without gradients the residuals are divided in place (no third copy at NetVLAD's size),
    so pass a tensor nothing else reads.
    """
    if torch.is_grad_enabled() and residuals.requires_grad:
        return _NormalisedResiduals.apply(residuals)
    _, clusters, total = _cluster_norms(residuals)
    return residuals.div_(clusters * total)


def reference_vlad_normalise(residuals: torch.Tensor) -> torch.Tensor:
    """What vlad_normalise computes: F.normalize per cluster, then over the flattened vector."""
    per_cluster = F.normalize(residuals, dim=1)
    return F.normalize(per_cluster.flatten(1), dim=1).reshape(residuals.shape)


def example(dtype: torch.dtype) -> tuple[torch.Tensor]:
    """Residuals of four videos: one with a cluster below eps, one below eps throughout (and,
    in float64, below eps after the first normalisation too). Under autocast the residuals
    are float32 (NetVLAD's subtraction of float32 centres makes them so)."""
    generator = torch.Generator().manual_seed(0)
    dtype = torch.float32 if dtype == torch.bfloat16 else dtype
    residuals = torch.randn(4, 6, 3, generator=generator, dtype=torch.float64)
    residuals[1, :, 0] *= 1e-14
    residuals[2] *= 1e-14
    if dtype == torch.float64:
        residuals[3] *= 1e-25
    return (residuals.to(dtype).requires_grad_(),)
