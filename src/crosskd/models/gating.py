"""Gating units of Mixture-of-Embedding-Experts and Collaborative Experts.

Module and parameter names (`fc`, `cg`, `batch_norm`, `batch_norm2`) follow the original
checkpoints so that published weights load without renaming.
"""

from __future__ import annotations

import torch
from torch import nn

from crosskd.ops import l2_normalize


class ContextGating(nn.Module):
    """x * sigmoid(BN(W x + b)): re-weights the features of x by a gate computed from x."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        self.batch_norm = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate `[B, D]` features by themselves."""
        return x * torch.sigmoid(self.batch_norm(self.fc(x)))


class GatedEmbeddingUnit(nn.Module):
    """Linear projection, context gating, L2 normalisation (one per expert and side)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)
        self.cg = ContextGating(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed `[B, in_dim]` into unit-norm `[B, out_dim]`."""
        return self.gate_projected(self.fc(x))

    def gate_projected(self, projected: torch.Tensor) -> torch.Tensor:
        """The steps after `fc`, for callers that computed `self.fc(x)` themselves."""
        return l2_normalize(self.cg(projected))


class ReduceDim(nn.Module):
    """Linear projection to the shared CE width followed by L2 normalisation."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project `[B, in_dim]` to unit-norm `[B, out_dim]`."""
        return l2_normalize(self.fc(x))


class ReasoningGating(nn.Module):
    """x * sigmoid(BN(gate) + BN(W x + b)): context gating steered by a collaborative gate."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        self.batch_norm = nn.BatchNorm1d(dim)
        self.batch_norm2 = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """Gate `[B, D]` features by themselves and by the other experts' `gate`."""
        return x * torch.sigmoid(self.batch_norm(gate) + self.batch_norm2(self.fc(x)))


class GatedEmbeddingUnitReasoning(nn.Module):
    """The video-side unit of CE: reasoning gating then L2 normalisation."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.cg = ReasoningGating(dim)

    def forward(self, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """Embed `[B, D]` features modulated by `gate` into unit-norm `[B, D]`."""
        return l2_normalize(self.cg(x, gate))
