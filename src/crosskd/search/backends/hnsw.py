"""The hnsw backend: a faiss HNSW graph (32 links per node) over 8-bit codes."""

from __future__ import annotations

from typing import Any

from crosskd.search.backends.approximate import ApproximateBackend
from crosskd.search.backends.base import BackendOption

#: the longest HNSW candidate list (faiss keeps it in a C int)
MAX_EF_SEARCH = 1 << 20


class HNSWBackend(ApproximateBackend):
    """faiss IndexHNSWSQ, searched with a candidate list of `ef_search` nodes."""

    name = "hnsw"
    description = "a faiss HNSW graph proposing candidates, re-ranked exactly"
    build_options = (*ApproximateBackend.build_options,
                     BackendOption("ef_search", "HNSW candidate-list size", 128,
                                   high=MAX_EF_SEARCH))

    @classmethod
    def faiss_index(cls, faiss: Any, dim: int, rows: int, ef_search: int) -> Any:
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, 32,
                                  faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = ef_search
        return index
