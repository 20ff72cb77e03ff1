"""NetVLAD pooling of a token sequence into one vector, with optional "ghost" clusters."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from crosskd.ops import vlad_normalise


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
        return vlad_normalise(residuals).reshape(batch, -1)
