"""Retrieval metrics: golden values of the original, a per-query reference, properties."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from crosskd.metrics import ranks_to_metrics, t2v_metrics, t2v_ranks, v2t_metrics, v2t_ranks

GOLDEN_CASES = [
    "square_1cap_continuous_nomask",
    "msrvtt_like_20caps_rounded1dp_2missing",
    "heavy_ties_int_5caps_random_missing",
    "msvd_like_81slots_variable_counts_rounded2dp",
    "all_tied_zeros_3caps",
]


def _tied_rank(scores: np.ndarray, target: float) -> float:
    """Mean position of `target` among the scores sorted from best to worst."""
    return float(np.flatnonzero(np.sort(-scores) == -target).mean())


def reference_t2v_ranks(sims: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
    """The definition, one query at a time."""
    per_video = sims.shape[0] // sims.shape[1]
    ranks = [_tied_rank(sims[row], sims[row, row // per_video]) for row in range(sims.shape[0])]
    keep = np.ones(sims.shape[0], bool) if masks is None else masks.reshape(-1).astype(bool)
    return np.array(ranks)[keep]


def reference_v2t_ranks(sims: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
    """The definition, one video and one caption at a time (missing captions score -1e8)."""
    num_queries, num_videos = sims.shape
    per_video = num_queries // num_videos
    keep = np.ones(num_queries, bool) if masks is None else masks.reshape(-1).astype(bool)
    ranks = []
    for video in range(num_videos):
        column = np.where(keep, sims[:, video], -1e8).astype(sims.dtype)
        own = [row for row in range(video * per_video, (video + 1) * per_video) if keep[row]]
        ranks.append(min((_tied_rank(column, column[row]) for row in own), default=np.inf))
    return np.array(ranks)


def _random_case(seed: int, num_videos: int, per_video: int, levels: int, masked: int):
    """A coarse-valued (tie-heavy) matrix and a mask with `masked` missing captions."""
    rng = np.random.default_rng(seed)
    sims = rng.integers(0, levels, size=(num_videos * per_video, num_videos)).astype(np.float32)
    masks = np.ones(num_videos * per_video)
    masks[rng.choice(masks.size, size=min(masked, masks.size - 1), replace=False)] = 0
    return sims, masks.reshape(num_videos, per_video)


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_metrics_equal_the_original_exactly(conformance, case):
    golden = json.loads((conformance / "metrics_golden.json").read_text())["cases"][case]
    arrays = np.load(conformance / "metrics_golden.npz")
    sims = arrays[f"{case}/sims"]
    masks = arrays[golden["query_masks"]] if golden["query_masks"] else None
    assert t2v_metrics(sims, masks) == golden["t2v_metrics"]
    assert v2t_metrics(sims, masks) == golden["v2t_metrics"]


def test_test_split_metrics_equal_the_original_exactly(conformance):
    expected = json.loads((conformance / "expected_test_metrics.json").read_text())
    arrays = np.load(conformance / "forward_golden.npz")
    sims, masks = arrays["test_split_sims"], arrays["test_split_query_masks"]
    assert t2v_metrics(sims, masks) == expected["t2v_metrics"]
    assert v2t_metrics(torch.from_numpy(sims), torch.from_numpy(masks)) == expected["v2t_metrics"]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), num_videos=st.integers(1, 9), per_video=st.integers(1, 4),
       levels=st.integers(1, 6), masked=st.integers(0, 5), chunk=st.integers(1, 40))
def test_ranks_match_the_per_query_reference(seed, num_videos, per_video, levels, masked, chunk):
    sims, masks = _random_case(seed, num_videos, per_video, levels, masked)
    np.testing.assert_array_equal(t2v_ranks(sims, masks, chunk_elements=chunk),
                                  reference_t2v_ranks(sims, masks))
    np.testing.assert_array_equal(v2t_ranks(sims, masks, chunk_elements=chunk),
                                  reference_v2t_ranks(sims, masks))
    np.testing.assert_array_equal(t2v_ranks(sims), reference_t2v_ranks(sims, None))
    np.testing.assert_array_equal(v2t_ranks(sims), reference_v2t_ranks(sims, None))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), num_videos=st.integers(2, 9), per_video=st.integers(1, 4),
       levels=st.integers(1, 6), masked=st.integers(0, 4))
def test_permuting_videos_consistently_keeps_the_metrics(seed, num_videos, per_video, levels,
                                                         masked):
    sims, masks = _random_case(seed, num_videos, per_video, levels, masked)
    order = np.random.default_rng(seed + 1).permutation(num_videos)
    rows = (order[:, None] * per_video + np.arange(per_video)).reshape(-1)
    permuted, permuted_masks = sims[rows][:, order], masks[order]
    assert t2v_metrics(permuted, permuted_masks) == t2v_metrics(sims, masks)
    assert v2t_metrics(permuted, permuted_masks) == v2t_metrics(sims, masks)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), num_videos=st.integers(1, 70), levels=st.integers(1, 50))
def test_recall_grows_with_k(seed, num_videos, levels):
    sims, masks = _random_case(seed, num_videos, 2, levels, 1)
    for metrics in (t2v_metrics(sims, masks), v2t_metrics(sims, masks)):
        recalls = [metrics[key] for key in ("R1", "R5", "R10", "R50")]
        assert recalls == sorted(recalls)
        assert 0 <= recalls[0] and recalls[-1] <= 100


@given(num_videos=st.integers(1, 30), per_video=st.integers(1, 5))
def test_a_perfect_diagonal_is_ranked_first(num_videos, per_video):
    # distinct positive scores: tied captions of one video would share an averaged rank
    own = np.arange(1, num_videos * per_video + 1, dtype=np.float32)[:, None]
    sims = np.repeat(np.eye(num_videos, dtype=np.float32), per_video, axis=0) * own
    for metrics in (t2v_metrics(sims), v2t_metrics(sims)):
        assert metrics["R1"] == 100.0
        assert metrics["MedR"] == 1.0 and metrics["MeanR"] == 1.0


def test_ties_are_averaged_and_r1_needs_a_clear_win():
    sims = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 1.0], [5.0, 5.0, 5.0]], dtype=np.float32)
    np.testing.assert_array_equal(t2v_ranks(sims), [0.5, 0.0, 1.0])
    assert t2v_metrics(sims)["R1"] == pytest.approx(100 / 3)


def test_v2t_skips_missing_captions_and_a_captionless_video_never_counts():
    sims = np.array([[9.0, 0.0], [9.0, 0.0], [0.0, 1.0], [0.0, 3.0]], dtype=np.float32)
    masks = np.array([[0, 0], [1, 1]])
    ranks = v2t_ranks(sims, masks)
    assert ranks[0] == np.inf and ranks[1] == 0.0
    assert v2t_metrics(sims, masks)["R50"] == 50.0


def test_torch_and_numpy_inputs_agree():
    sims, masks = _random_case(3, 12, 3, 4, 2)
    assert t2v_metrics(torch.from_numpy(sims), torch.from_numpy(masks)) == t2v_metrics(sims, masks)
    assert v2t_metrics(torch.from_numpy(sims).double(), masks) == v2t_metrics(sims, masks)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="not a multiple"):
        t2v_metrics(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="query_masks"):
        t2v_metrics(np.zeros((4, 2)), np.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        v2t_metrics(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="every query is masked"):
        ranks_to_metrics(np.array([]))
