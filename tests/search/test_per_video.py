"""`per_video`: each video's best segment only, still k hits where there are k videos, and
exactly the full ranking with every video's later segments left out, raw or by QB-Norm."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from crosskd.search import Index, Query
from crosskd.search.moments import Moments

from test_exactness import TOLERANCE, collections
from test_qbnorm_search import evaluation_row, random_bank_case


def brute_force(keys: np.ndarray, video: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k first items of distinct videos in the full ranking by `keys` (ties
    by position)."""
    kept, seen = [], set()
    for position in np.lexsort((np.arange(len(keys)), -keys)):
        if video[position] not in seen:
            seen.add(video[position])
            kept.append(position)
    return np.array(kept[:k], np.int64)


def assert_best_per_video(hits, ids: list[str], keys: np.ndarray, video: np.ndarray,
                          k: int, raw: np.ndarray) -> None:
    """`hits` are `brute_force`'s answer: k distinct videos, the same key at every rank, each
    its video's best segment; ids may differ only where keys tie within rounding."""
    expected = brute_force(keys, video, k)
    position = {vid: i for i, vid in enumerate(ids)}
    got = np.array([position[hit.item_id] for hit in hits], np.int64)
    assert len(got) == len(expected) == min(k, len(np.unique(video)))
    assert len(np.unique(video[got])) == len(got)
    np.testing.assert_allclose(keys[got], keys[expected], atol=TOLERANCE, rtol=0)
    for hit, p in zip(hits, got):
        assert abs(hit.score - raw[p]) <= TOLERANCE
        assert keys[p] >= keys[video == video[p]].max() - TOLERANCE
        assert hit.moment.video_id == f"video{video[p]}"


@st.composite
def segmented(draw):
    """A collection (test_exactness.collections) whose items are segments of 1-6 videos,
    a few videos holding most segments so that the best items crowd into them."""
    (dims, items, seed, patterns, k) = draw(collections())
    videos = draw(st.integers(1, min(6, items)))
    video = np.array(draw(st.lists(st.integers(0, videos - 1), min_size=items,
                                   max_size=items)), np.int64)
    video[:videos] = np.arange(videos)  # every video has a segment
    return dims, items, seed, patterns, k, video


def _index(dims, items, seed, patterns, video, bank_size: int = 0, beta: float = 20.0):
    """A segmented index of random unit embeddings, its 8 queries and their scores, and with
    `bank_size` QB-Norm's bank folded from as many more queries (test_qbnorm_search)."""
    embeddings, availability, texts, weights, scores, bank = random_bank_case(
        dims, items, seed, patterns, bank_size, beta)
    ids = [f"s{i}" for i in range(items)]
    index = Index.from_embeddings(ids, [f"e{e}" for e in range(len(dims))], dims, embeddings,
                                  availability, querybank=bank)
    index.moments = Moments.of([(f"video{v}", float(i), i + 1.0) for i, v in enumerate(video)])
    queries = [Query(t, w) for t, w in zip(texts[bank_size:], weights[bank_size:])]
    return index, ids, queries, scores[bank_size:], bank


@settings(max_examples=60, deadline=None)
@given(segmented())
def test_per_video_equals_filtering_the_full_ranking(case):
    dims, items, seed, patterns, k, video = case
    index, ids, queries, scores, _ = _index(dims, items, seed, patterns, video)
    for hits, raw in zip(index.search_many(queries, k, per_video=True), scores):
        assert_best_per_video(hits, ids, raw, video, k, raw)


@settings(max_examples=40, deadline=None)
@given(segmented(), st.integers(1, 20))
def test_per_video_ranks_by_qbnorm_as_evaluation(case, bank_size):
    """With a bank, a query whose raw best segment is active keeps each video's best segment
    by normalised score (evaluation's row), any other by raw score."""
    dims, items, seed, patterns, k, video = case
    index, ids, queries, scores, bank = _index(dims, items, seed, patterns, video, bank_size)
    for ranking, raw in zip(index.rank(queries, k, per_video=True), scores):
        best = np.sort(raw)[::-1]
        if len(raw) > 1 and best[0] - best[1] <= TOLERANCE:
            continue  # the best segment is a tie within rounding: either decision is right
        row, normalised = evaluation_row(bank, raw)
        assert ranking.normalised == normalised
        keys = bank.beta * raw - bank.log_normaliser if normalised else raw
        assert_best_per_video(ranking.hits, ids, keys, video, k, raw)


def test_k_videos_are_found_when_one_video_holds_the_best_segments():
    """The best 40 of 60 segments are one video's, each other video has one: the candidates
    widen (9, 18, 36, 60) until 3 videos are in them, and the answer is each video's best."""
    items = 60
    embeddings = np.zeros((items, 1, 2), np.float32)
    embeddings[:, 0, 0] = np.linspace(1, 0, items)
    video = np.array([0] * 40 + list(range(1, 21)))
    index = Index.from_embeddings([f"s{i}" for i in range(items)], ["e"], [2], embeddings,
                                  np.ones((items, 1), np.float32))
    index.moments = Moments.of([(f"video{v}", 0.0, 1.0) for v in video])
    query = Query(np.array([[1.0, 0.0]], np.float32), np.ones(1, np.float32))
    hits = index.search(query, 3, per_video=True)
    assert [hit.item_id for hit in hits] == ["s0", "s40", "s41"]
    assert [hit.moment.video_id for hit in hits] == ["video0", "video1", "video2"]
    assert len(index.search(query, 30, per_video=True)) == 21  # as many as there are videos
    assert [hit.item_id for hit in index.search(query, 3)] == ["s0", "s1", "s2"]


def test_per_video_changes_nothing_for_whole_videos():
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((12, 2, 3)).astype(np.float32)
    index = Index.from_embeddings([f"v{i}" for i in range(12)], ["a", "b"], [3, 3],
                                  embeddings, np.ones((12, 2), np.float32))
    query = Query(rng.standard_normal((2, 3)).astype(np.float32),
                  np.array([0.5, 0.5], np.float32))
    assert index.search(query, 5, per_video=True) == index.search(query, 5)
    assert all(hit.moment is None and hit.video_id == hit.item_id
               for hit in index.search(query, 5))


@pytest.mark.parametrize("seconds, down, up", [(0, "00:00", "00:00"), (2.5, "00:02", "00:03"),
                                               (59.9996, "01:00", "01:00"),
                                               (754.0, "12:34", "12:34"),
                                               (3725.2, "1:02:05", "1:02:06")])
def test_times_read_as_a_clock_that_holds_the_moment(seconds, down, up):
    from crosskd.search.moments import clock
    assert (clock(seconds), clock(seconds, up=True)) == (down, up)
