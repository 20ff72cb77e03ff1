"""NetVLAD pooling of a token sequence into one vector, with optional "ghost" clusters."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from crosskd.models.l2norm import EPS


def _cluster_norms(residuals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What L2-normalising each cluster's residual `[B, D, K]` (over D) and then the flattened
    vector divides by: each cluster's norm `[B, 1, K]`, its divisor max(norm, eps), and the
    second normalisation's divisor `[B, 1, 1]`. After the first normalisation cluster k's
    norm is n_k / max(n_k, eps), so the second needs the per-cluster norms only, and the
    residuals are read twice instead of four times. (`Tensor.norm` is float32 under
    autocast, as in F.normalize.)"""
    norms = residuals.norm(dim=1, keepdim=True)
    clusters = norms.clamp_min(EPS)
    return norms, clusters, (norms / clusters).norm(dim=2, keepdim=True).clamp_min(EPS)


class _NormalisedResiduals(torch.autograd.Function):
    """residuals / (max(n_k, eps) * t), with the two normalisations' backward in closed form.

    With y the output, g its gradient, s_k = <y_k, g_k> per cluster, s = sum_k s_k and
    r_k = n_k / max(n_k, eps) (cluster k's norm after the first normalisation), chaining the
    two normalisations' derivatives gives

        (g - y * (s + t^2 s_k - s r_k^2)) / (max(n_k, eps) * t),

    with s dropped where t is eps and the cluster term where n_k < eps. That is four passes
    over the residuals (autograd, differentiating the divisor's operators one by one, makes
    about ten) and 16 operators instead of about 30, each a kernel on a GPU.
    """

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


class NetVLAD(nn.Module):
    """Soft-assign tokens to clusters and concatenate their normalised residuals.

    Ghost clusters take part in the soft assignment (so tokens can be assigned to "nothing")
    but are dropped from the output. Padding tokens are not masked, as in the original.
    Parameter names (`clusters`, `clusters2`, `batch_norm`) follow the original checkpoints.
    """

    def __init__(self, feature_size: int, cluster_size: int, ghost_clusters: int = 0) -> None:
        super().__init__()
        self.feature_size = feature_size
        self.cluster_size = cluster_size
        self.ghost_clusters = ghost_clusters
        scale = 1 / math.sqrt(feature_size)
        total = cluster_size + ghost_clusters
        self.clusters = nn.Parameter(scale * torch.randn(feature_size, total))
        self.clusters2 = nn.Parameter(scale * torch.randn(1, feature_size, cluster_size))
        self.batch_norm = nn.BatchNorm1d(total)

    @property
    def out_dim(self) -> int:
        """Width of the pooled vector: clusters x token width."""
        return self.cluster_size * self.feature_size

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Pool `[B, N, D]` tokens into `[B, D * K]` (feature-major, as the original flattens)."""
        batch, num_tokens, _ = tokens.shape
        flat = tokens.reshape(batch * num_tokens, self.feature_size)
        logits = self.batch_norm(flat @ self.clusters)
        assignment = F.softmax(logits, dim=1)[:, : self.cluster_size]
        assignment = assignment.reshape(batch, num_tokens, self.cluster_size)
        mass = assignment.sum(dim=1, keepdim=True)  # [B, 1, K]
        weighted = torch.bmm(tokens.transpose(1, 2), assignment)  # [B, D, K]
        # The residuals overwrite the product (bmm's backward needs its inputs only), except
        # for autocast's bfloat16 product, whose residual is float32 as a subtraction gives.
        if weighted.dtype == self.clusters2.dtype:
            residuals = weighted.addcmul_(mass, self.clusters2, value=-1)
        else:
            residuals = torch.addcmul(weighted, mass, self.clusters2, value=-1)
        if torch.is_grad_enabled() and residuals.requires_grad:
            return _NormalisedResiduals.apply(residuals).reshape(batch, -1)
        _, clusters, total = _cluster_norms(residuals)
        return residuals.div_(clusters * total).reshape(batch, -1)  # no third copy
