"""Mixture-of-experts weights: how much each expert's similarity counts for a caption."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mixture_weights(pooled_text: torch.Tensor, moe_fc: nn.Linear) -> torch.Tensor:
    """Per-caption expert weights `[N, E]` (softmax over experts) from pooled captions `[N, D]`."""
    return F.softmax(moe_fc(pooled_text), dim=1)

