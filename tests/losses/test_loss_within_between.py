"""CrossKD within-to-between KL distillation."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from crosskd.losses import WithinBetweenLoss


def reference_kl(student: torch.Tensor, target: torch.Tensor, t: float) -> float:
    """sum_ij p_ij (log p_ij - log q_ij) / rows, p = softmax(target/t), q = softmax(student/t)."""
    p, q = torch.softmax(target / t, 1), torch.softmax(student / t, 1)
    return float((p * (p.log() - q.log())).sum() / student.shape[0])


def _pair(n: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, n, generator=gen, dtype=torch.float64),
            torch.randn(n, n, generator=gen, dtype=torch.float64))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 6), t=st.floats(0.1, 10), seed=st.integers(0, 2**31))
def test_caption_and_video_sides_match_the_kl_definition(n, t, seed):
    cross, within = _pair(n, seed)
    caption = WithinBetweenLoss(t, side="caption")(cross, within).item()
    video = WithinBetweenLoss(t, side="video")(cross, within).item()
    assert caption == pytest.approx(reference_kl(cross, within, t), rel=1e-9, abs=1e-12)
    assert video == pytest.approx(reference_kl(cross.t(), within, t), rel=1e-9, abs=1e-12)
    assert caption >= -1e-12


def test_zero_when_the_matrices_agree():
    cross, _ = _pair(4, 0)
    assert WithinBetweenLoss(2.0)(cross, cross.clone()).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("detach", [False, True])
def test_gradient_reaches_the_target_unless_detached(detach):
    cross, within = (m.requires_grad_(True) for m in _pair(3, 1))
    WithinBetweenLoss(5.0, detach_target=detach)(cross, within).backward()
    assert cross.grad.abs().sum() > 0
    assert (within.grad is None) == detach


def test_rejects_bad_settings():
    with pytest.raises(ValueError, match="temperature"):
        WithinBetweenLoss(0.0)
    with pytest.raises(ValueError, match="side"):
        WithinBetweenLoss(1.0, side="text")
