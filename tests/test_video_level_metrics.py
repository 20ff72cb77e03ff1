"""Video-level metrics of a segmented split: a per-query reference, properties, a hand case."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crosskd.metrics import (t2v_ranks, v2t_ranks, video_t2v_metrics, video_t2v_ranks,
                             video_v2t_metrics, video_v2t_ranks)


def _tied_rank(scores: np.ndarray, target: float) -> float:
    """Mean position of `target` among the scores sorted from best to worst."""
    return float(np.flatnonzero(np.sort(-scores) == -target).mean())


def _video_scores(sims: np.ndarray, item_video: np.ndarray) -> np.ndarray:
    """`[queries, videos]`: each video's best segment score, one video at a time."""
    return np.stack([sims[:, item_video == video].max(1)
                     for video in range(item_video.max() + 1)], axis=1)


def reference_t2v(sims: np.ndarray, item_video: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The definition, one query at a time."""
    per_item = sims.shape[0] // sims.shape[1]
    scores = _video_scores(sims, item_video)
    return np.array([_tied_rank(scores[row], scores[row, item_video[row // per_item]])
                     for row in range(len(sims)) if keep[row]])


def reference_v2t(sims: np.ndarray, item_video: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The definition, one video and one caption at a time (missing captions score -1e8)."""
    per_item = sims.shape[0] // sims.shape[1]
    scores = _video_scores(sims, item_video)
    ranks = []
    for video in range(scores.shape[1]):
        column = np.where(keep, scores[:, video], -1e8).astype(sims.dtype)
        own = [row for row in range(len(sims))
               if keep[row] and item_video[row // per_item] == video]
        ranks.append(min((_tied_rank(column, column[row]) for row in own), default=np.inf))
    return np.array(ranks)


@st.composite
def segmented_cases(draw, one_segment_per_video: bool = False):
    """A tie-heavy `[items * captions, items]` matrix, its mask and each item's video."""
    items = draw(st.integers(1, 9))
    per_item = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    sims = rng.integers(0, draw(st.integers(1, 6)), size=(items * per_item, items))
    keep = np.ones(items * per_item, bool)
    masked = min(draw(st.integers(0, 5)), keep.size - 1)
    keep[rng.choice(keep.size, size=masked, replace=False)] = False
    if one_segment_per_video:
        item_video = rng.permutation(items)
    else:
        videos = draw(st.integers(1, items))
        item_video = np.concatenate([np.arange(videos), rng.integers(0, videos, items - videos)])
        item_video = rng.permutation(item_video)
    return sims.astype(np.float32), keep.reshape(items, per_item).astype(float), item_video


@settings(max_examples=60, deadline=None)
@given(case=segmented_cases(), chunk=st.integers(1, 40))
def test_video_ranks_match_the_per_query_reference(case, chunk):
    sims, masks, item_video = case
    keep = masks.reshape(-1).astype(bool)
    np.testing.assert_array_equal(video_t2v_ranks(sims, item_video, masks, chunk),
                                  reference_t2v(sims, item_video, keep))
    np.testing.assert_array_equal(video_v2t_ranks(sims, item_video, masks, chunk),
                                  reference_v2t(sims, item_video, keep))


@settings(max_examples=60, deadline=None)
@given(case=segmented_cases(one_segment_per_video=True))
def test_one_segment_per_video_gives_the_segment_level_ranks(case):
    sims, masks, item_video = case
    np.testing.assert_array_equal(video_t2v_ranks(sims, item_video, masks),
                                  t2v_ranks(sims, masks))
    np.testing.assert_array_equal(video_v2t_ranks(sims, item_video, masks)[item_video],
                                  v2t_ranks(sims, masks))


@settings(max_examples=60, deadline=None)
@given(case=segmented_cases())
def test_a_video_ranks_no_worse_than_its_captions_segment(case):
    """So a segment ranked first makes its video ranked first."""
    sims, masks, item_video = case
    segment, video = t2v_ranks(sims, masks), video_t2v_ranks(sims, item_video, masks)
    assert (video <= segment).all()
    assert (video[segment == 0] == 0).all()


def test_a_hand_computed_case():
    """Videos a (segments 0, 1) and b (segment 2), one caption per segment."""
    sims = np.array([[0.9, 0.1, 0.8],   # caption of a's segment 0: a 0.9 > b 0.8
                     [0.2, 0.3, 0.7],   # caption of a's segment 1: b 0.7 > a 0.3
                     [0.6, 0.1, 0.5]])  # caption of b: a 0.6 > b 0.5
    item_video = np.array([0, 0, 1])
    np.testing.assert_array_equal(video_t2v_ranks(sims, item_video), [0, 1, 1])
    # a's column is 0.9, 0.3, 0.6: its best own caption (0.9) is first; b's column is
    # 0.8, 0.7, 0.5: its own caption (0.5) is third
    np.testing.assert_array_equal(video_v2t_ranks(sims, item_video), [0, 2])
    t2v = video_t2v_metrics(sims, item_video)
    assert t2v["R1"] == pytest.approx(100 / 3) and t2v["MedR"] == 2
    assert video_v2t_metrics(sims, item_video)["R1"] == 50


def test_masked_captions_take_no_part():
    sims = np.array([[0.9, 0.1, 0.8], [0.2, 0.3, 0.7], [0.6, 0.1, 0.5]])
    masks = np.array([[1.0], [0.0], [1.0]])
    np.testing.assert_array_equal(video_t2v_ranks(sims, [0, 0, 1], masks), [0, 1])


@pytest.mark.parametrize("item_video, match", [([0, 1], "one integer video position"),
                                               ([0.0, 0.0, 1.0], "one integer video position"),
                                               ([0, 2, 2], "each owning an item"),
                                               ([-1, 0, 0], "each owning an item")])
def test_bad_item_videos_are_rejected(item_video, match):
    with pytest.raises(ValueError, match=match):
        video_t2v_ranks(np.zeros((3, 3)), np.array(item_video))


def test_nan_at_a_right_video_is_an_error():
    sims = np.array([[np.nan, np.nan], [0.1, 0.2]])
    with pytest.raises(ValueError, match="NaN"):
        video_t2v_ranks(sims, np.array([0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        video_v2t_ranks(sims, np.array([0, 1]))
