"""NetVLAD pooling of a token sequence into one vector, with optional "ghost" clusters."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from crosskd.models.l2norm import EPS, l2_normalize_backward


def _cluster_norms(residuals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The divisor `[B, 1, K]` equal to L2-normalising each cluster's residual `[B, D, K]`
    (over D) and then the flattened vector, with the norms it is made of: each cluster's
    `[B, 1, K]` and the intra-normalised vector's `[B, 1, 1]`. After the first normalisation
    cluster k's norm is n_k / max(n_k, eps), so the second needs the per-cluster norms only,
    and the residuals are read twice instead of four times. (`Tensor.norm` is float32 under
    autocast, as in F.normalize.)"""
    norms = residuals.norm(dim=1, keepdim=True)
    divisors = norms.clamp_min(EPS)
    total = (norms / divisors).norm(dim=2, keepdim=True)
    return divisors * total.clamp_min(EPS), norms, total


class _NormalisedResiduals(torch.autograd.Function):
    """residuals / divisor, with the two normalisations' closed-form backward: 16 operators
    where autograd, differentiating the divisor's operators one by one, takes 31; on a GPU,
    inside a CUDA graph, each is a kernel of a few microseconds."""

    @staticmethod
    def forward(ctx: Any, residuals: torch.Tensor) -> torch.Tensor:
        divisor, norms, total = _cluster_norms(residuals)
        out = residuals / divisor
        ctx.save_for_backward(out, norms, total)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        out, norms, total = ctx.saved_tensors
        grad_unit = l2_normalize_backward(grad, out, total, (1, 2))  # out = unit / max(total, eps)
        unit = out * total.clamp_min(EPS)  # each cluster's residual / max(n_k, eps)
        return l2_normalize_backward(grad_unit, unit, norms, (1,))


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
        return residuals.div_(_cluster_norms(residuals)[0]).reshape(batch, -1)  # no 3rd copy
