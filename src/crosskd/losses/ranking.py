"""Bidirectional max-margin ranking loss on a square caption-video similarity matrix."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaxMarginRankingLoss(nn.Module):
    """Hinge on every (positive, negative) pair, both directions, averaged.

    Row i's positive is sims[i, i]; its negatives are sims[i, j] (other videos for
    caption i) and sims[j, i] (other captions for video i). With `fix_norm` the
    diagonal pairs, which always contribute exactly `margin`, are left out of the mean.
    """

    def __init__(self, margin: float = 1.0, fix_norm: bool = True) -> None:
        super().__init__()
        self.margin = margin
        self.fix_norm = fix_norm

    def forward(self, sims: torch.Tensor) -> torch.Tensor:
        """Mean hinge loss of a [B, B] matrix whose diagonal holds the matching pairs."""
        if sims.ndim != 2 or sims.shape[0] != sims.shape[1]:
            raise ValueError(f"expected a square similarity matrix, got {tuple(sims.shape)}")
        positive = sims.diagonal().unsqueeze(1)
        hinges = torch.stack((F.relu(self.margin - positive + sims),
                              F.relu(self.margin - positive + sims.t())))
        if self.fix_norm:  # a multiplicative mask: boolean indexing would wait for the device
            size = sims.shape[0]
            off_diagonal = 1 - torch.eye(size, dtype=hinges.dtype, device=sims.device)
            return (hinges * off_diagonal).sum() / (2 * size * (size - 1))
        return hinges.mean()


def first_query_ranking_loss(loss: nn.Module, sims: torch.Tensor,
                             queries_per_video: int) -> torch.Tensor:
    """The original's validation "first-query loss": `loss` on caption 0 of every video.

    `sims` is an evaluation matrix [videos * queries_per_video, videos] with video-major
    rows; keeping each video's first caption gives a square matrix.
    """
    num_videos = sims.shape[-1]
    return loss(sims.reshape(num_videos, queries_per_video, num_videos)[:, 0, :])
