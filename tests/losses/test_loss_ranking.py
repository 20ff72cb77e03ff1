"""Max-margin ranking loss against a pair-by-pair reference."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from crosskd.losses import MaxMarginRankingLoss, first_query_ranking_loss


def reference_ranking_loss(sims: torch.Tensor, margin: float, fix_norm: bool) -> float:
    """Every (positive, negative) hinge, written out pair by pair."""
    n = sims.shape[0]
    hinges = []
    for i in range(n):
        for j in range(n):
            if fix_norm and i == j:
                continue
            hinges.append(max(0.0, margin - sims[i, i].item() + sims[i, j].item()))
            hinges.append(max(0.0, margin - sims[i, i].item() + sims[j, i].item()))
    return sum(hinges) / len(hinges)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 7), margin=st.floats(0, 2), fix_norm=st.booleans(),
       seed=st.integers(0, 2**31))
def test_matches_the_pairwise_reference(n, margin, fix_norm, seed):
    sims = torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    value = MaxMarginRankingLoss(margin, fix_norm)(sims).item()
    assert value == pytest.approx(reference_ranking_loss(sims, margin, fix_norm), rel=1e-12)


def test_zero_when_positives_win_by_the_margin():
    sims = torch.eye(4) * 2.0
    assert MaxMarginRankingLoss(margin=1.0)(sims).item() == 0.0
    # without fix_norm the 2n diagonal pairs add margin each, out of 2n^2 pairs
    assert MaxMarginRankingLoss(margin=1.0, fix_norm=False)(sims).item() == pytest.approx(1 / 4)


def test_gradient_pushes_positives_up_and_negatives_down():
    sims = torch.zeros(3, 3, requires_grad=True)
    MaxMarginRankingLoss(margin=0.5)(sims).backward()
    assert (sims.grad.diagonal() < 0).all()
    assert (sims.grad[~torch.eye(3, dtype=torch.bool)] > 0).all()


def test_rejects_a_non_square_matrix():
    with pytest.raises(ValueError, match="square"):
        MaxMarginRankingLoss()(torch.zeros(6, 3))


def test_first_query_loss_uses_caption_zero_of_every_video():
    sims = torch.randn(3 * 4, 3, generator=torch.Generator().manual_seed(0))
    loss = MaxMarginRankingLoss(margin=0.2)
    expected = loss(sims[[0, 4, 8]])
    assert first_query_ranking_loss(loss, sims, queries_per_video=4).item() == expected.item()
