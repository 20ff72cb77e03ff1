"""Exact search equals scoring the whole collection with the model's own similarity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from crosskd.config import as_experiment
from crosskd.data.retrieval import RetrievalData
from crosskd.models import build_model
from crosskd.models.similarity import mixture_inner_products
from crosskd.search import Index, Query
from crosskd.search.backends import ExactBackend, faiss_module
from crosskd.search.build import index_from_model
from crosskd.inference import score_split

TOLERANCE = 1e-5


def reference_top(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k best scores, ties by position (the order the index answers in)."""
    return np.lexsort((np.arange(len(scores)), -scores))[:k]


def assert_same_top_k(hits, ids, scores, k):
    """Same scores at every rank; the same ids except where two scores tie within rounding."""
    expected = reference_top(scores, k)
    assert len(hits) == min(k, len(ids))
    got = np.array([h.score for h in hits])
    np.testing.assert_allclose(got, scores[expected], atol=TOLERANCE, rtol=0)
    by_id = {vid: scores[i] for i, vid in enumerate(ids)}
    for hit, position in zip(hits, expected):
        assert abs(by_id[hit.item_id] - hit.score) <= TOLERANCE  # its own model score
        if hit.item_id != ids[position]:
            assert abs(scores[position] - hit.score) <= TOLERANCE


@st.composite
def collections(draw):
    experts = draw(st.integers(1, 4))
    dims = draw(st.lists(st.integers(1, 6), min_size=experts, max_size=experts))
    videos = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**31 - 1))
    patterns = draw(st.lists(st.lists(st.booleans(), min_size=experts, max_size=experts)
                             .filter(any), min_size=1, max_size=5))
    k = draw(st.integers(1, videos + 3))
    return dims, videos, seed, patterns, k


def random_videos(dims, videos: int, seed: int, patterns) -> tuple[np.random.Generator,
                                                                    np.ndarray, np.ndarray]:
    """A seeded generator, `[videos, experts, max(dims)]` embeddings zero-padded past each
    expert's width (as the model pads narrower experts) and an availability pattern per video."""
    rng = np.random.default_rng(seed)
    embeddings = rng.standard_normal((videos, len(dims), max(dims))).astype(np.float32)
    for e, d in enumerate(dims):
        embeddings[:, e, d:] = 0
    availability = np.array([patterns[i] for i in rng.integers(0, len(patterns), videos)],
                            np.float32)
    return rng, embeddings, availability


@settings(max_examples=60, deadline=None)
@given(collections(), st.booleans())
def test_exact_search_equals_scoring_every_video(case, use_faiss):
    dims, videos, seed, patterns, k = case
    if use_faiss and faiss_module() is None:
        pytest.skip("faiss is not installed (pip install 'crosskd[search]')")
    rng, embeddings, availability = random_videos(dims, videos, seed, patterns)
    experts, width = len(dims), max(dims)
    text = rng.standard_normal((experts, width)).astype(np.float32)
    weights = rng.dirichlet(np.ones(experts)).astype(np.float32)
    ids = [f"v{i}" for i in range(videos)]
    index = Index.from_embeddings(ids, [f"e{e}" for e in range(experts)], dims, embeddings,
                                  availability)
    for group in index.groups:
        group.backend = ExactBackend(group.vectors, use_faiss=use_faiss)
    scores = mixture_inner_products(torch.from_numpy(text[None]), torch.from_numpy(weights[None]),
                                    torch.from_numpy(embeddings),
                                    torch.from_numpy(availability))[0].numpy()
    hits = index.search(Query(text, weights), k)
    assert_same_top_k(hits, ids, scores, k)
    for hit in hits:
        assert sum(hit.contributions.values()) == pytest.approx(hit.score, abs=TOLERANCE)


@settings(max_examples=4, deadline=None)
@given(st.integers(0, 1000), st.integers(1, 20))
def test_caption_queries_equal_the_test_split_similarity_matrix(tiny_collection, seed, k):
    """A random model embeds the split; each caption's answer is its row of score_split."""
    _, config, _, _ = tiny_collection
    experiment = as_experiment(config)
    torch.manual_seed(seed)
    model = build_model(experiment.model).eval()
    data = RetrievalData.load(experiment.data)
    index = index_from_model(model, experiment, data)
    sims = score_split(model, data.eval, torch.device("cpu"))
    ids = data.eval.video_ids
    for n in range(0, len(index.captions), 7):
        owner, slot = int(index.captions.owner[n]), int(index.captions.slot[n])
        hits = index.search(index.caption(ids[owner], slot), k)
        assert_same_top_k(hits, ids, sims[owner * data.eval.slots + slot], k)


def test_a_saved_index_answers_as_the_one_built(tiny_collection):
    _, _, _, path = tiny_collection
    index = Index.load(path)
    query = index.caption(index.video_ids[0], 0)
    assert [h.item_id for h in index.search(query, 5)]
    assert len(index.describe_patterns()) == len(index.groups) > 1  # the data misses experts


@pytest.mark.parametrize("dtype, tolerance", [("float16", 2e-3), ("int8", 3e-2)])
def test_reduced_storage_scores_stay_close(dtype, tolerance):
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((200, 3, 8)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=2, keepdims=True)
    availability = (rng.random((200, 3)) < 0.8).astype(np.float32)
    availability[:, 0] = 1
    text = rng.standard_normal((3, 8)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    weights = np.array([0.5, 0.3, 0.2], np.float32)
    ids = [str(i) for i in range(200)]
    exact = Index.from_embeddings(ids, "abc", [8] * 3, embeddings, availability)
    reduced = Index.from_embeddings(ids, "abc", [8] * 3, embeddings, availability, dtype)
    assert reduced.groups[0].vectors.dtype == dtype
    truth = {h.item_id: h.score for h in exact.search(Query(text, weights), 200)}
    for hit in reduced.search(Query(text, weights), 20):
        assert abs(hit.score - truth[hit.item_id]) < tolerance
