"""Approximate backends propose candidates; what they return is scored exactly."""

from __future__ import annotations

import numpy as np
import pytest

from crosskd.search import Index, Query

pytest.importorskip("faiss", reason="the approximate backends need faiss "
                    "(pip install 'crosskd[search]')")


def clustered(videos: int, experts: int, width: int, seed: int = 0):
    """Unit embeddings around 40 topics (real collections are clustered, not uniform)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, experts, width))
    embeddings = centres[rng.integers(0, 40, videos)] + 0.7 * rng.standard_normal(
        (videos, experts, width))
    embeddings /= np.linalg.norm(embeddings, axis=2, keepdims=True)
    availability = np.ones((videos, experts), np.float32)
    availability[rng.random(videos) < 0.3, experts - 1] = 0
    return embeddings.astype(np.float32), availability, centres


@pytest.mark.parametrize("backend, options", [("ivf", {}), ("hnsw", {}),
                                              ("ivf", {"project_to": 24})])
def test_approximate_backends_find_the_exact_top_10(tmp_path, backend, options):
    embeddings, availability, centres = clustered(3000, 3, 16)
    ids = [f"v{i}" for i in range(len(embeddings))]
    exact = Index.from_embeddings(ids, "abc", [16] * 3, embeddings, availability)
    approximate = Index.from_embeddings(ids, "abc", [16] * 3, embeddings, availability,
                                        backend=backend, approximate_from=500, **options)
    approximate.save(tmp_path / "index")
    reopened = Index.load(tmp_path / "index")
    assert reopened.groups[0].backend.name == backend
    rng = np.random.default_rng(1)
    found = []
    for q in range(20):
        text = centres[q] + 0.5 * rng.standard_normal(centres[q].shape)
        text /= np.linalg.norm(text, axis=1, keepdims=True)
        query = Query(text.astype(np.float32), rng.dirichlet(np.ones(3)).astype(np.float32))
        truth = exact.search(query, 10)
        hits = reopened.search(query, 10)
        scores = {h.item_id: h.score for h in exact.search(query, len(ids))}
        for hit in hits:  # re-ranked: every returned score is the exact one
            assert hit.score == pytest.approx(scores[hit.item_id], abs=1e-5)
        found.append(len({h.item_id for h in truth} & {h.item_id for h in hits}) / 10)
    assert np.mean(found) >= 0.9
