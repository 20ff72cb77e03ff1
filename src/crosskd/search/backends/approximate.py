"""Approximate backends: a faiss index over 8-bit scalar-quantised, optionally projected
vectors proposes `candidates` rows per query, which are re-ranked exactly with the stored
vectors, so every returned value is exact and only recall can be lost. A subclass says which
faiss index (`faiss_index`) and declares that index's own options.

With a `column` (QB-Norm), the faiss vectors carry it as one more dimension, where queries
put their column weight (0 for a raw query).
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from crosskd.search.backends.base import FAISS, Backend, BackendOption, faiss_module
from crosskd.search.backends.exact import (ExactBackend, exact_inner_products, ranking_keys,
                                           scan_chunk)
from crosskd.search.backends.projection import Projection
from crosskd.search.normalisers import Column
from crosskd.search.storage import StoredVectors

if TYPE_CHECKING:
    from crosskd.search.index_files import IndexFolder

#: the longest candidate list: faiss allocates that many entries per query
MAX_CANDIDATES = 1 << 20
PROJECT_TO = BackendOption("project_to", "reduce each pattern's vectors to DIM dimensions for "
                           "the candidate search", None, metavar="DIM", none_means="full width")
CANDIDATES = BackendOption("candidates", "candidates an approximate index proposes for the "
                           "exact re-rank", 200, high=MAX_CANDIDATES)
#: rows drawn to train the faiss index, and the first of them to fit the projection
TRAINING_ROWS, PROJECTION_ROWS = 50_000, 8192


class ApproximateBackend(Backend):
    """A faiss index proposing candidates that are re-ranked with the stored vectors."""

    needs = FAISS
    scan_below = 4096
    build_options = (PROJECT_TO,)
    search_options = (CANDIDATES,)

    def __init__(self, index: Any, vectors: StoredVectors, projection: Projection | None,
                 candidates: int, column: Column | None = None) -> None:
        self.index, self.vectors = index, vectors
        self.projection, self.candidates, self.column = projection, candidates, column

    @classmethod
    @abstractmethod
    def faiss_index(cls, faiss: Any, dim: int, rows: int, **settings: Any) -> Any:
        """An untrained faiss index by inner product for `rows` vectors of `dim`, its search
        settings (saved with it) from this backend's own options."""

    @classmethod
    def build(cls, vectors: StoredVectors, column: Column | None, project_to: int | None,
              candidates: int, **settings: Any) -> "ApproximateBackend":
        """Train and fill the faiss index from the stored vectors, in chunks."""
        faiss = faiss_module()
        rng = np.random.default_rng(0)  # the same vectors give the same index
        n = len(vectors)
        chosen = np.sort(rng.choice(n, min(n, TRAINING_ROWS), replace=False))
        sample = vectors.decode(chosen)
        projection = None
        if project_to is not None and project_to < sample.shape[1]:
            projection = Projection.fit(sample[:PROJECTION_ROWS], project_to)
        backend = cls(None, vectors, projection, candidates, column)
        sample = backend._coarse_rows(sample, chosen)
        index = cls.faiss_index(faiss, sample.shape[1], n, **settings)
        index.train(sample)
        chunk = scan_chunk(vectors.slices.width)
        for start in range(0, n, chunk):
            rows = slice(start, start + chunk)
            index.add(backend._coarse_rows(vectors.decode(rows), rows))
        backend.index = index
        return backend

    def _coarse(self, vectors: np.ndarray, extra: np.ndarray | None) -> np.ndarray:
        """What the faiss index holds of `vectors`: projected, then `extra` appended (the
        column of stored rows, the column weights of queries) when there is a column."""
        coarse = self.projection(vectors) if self.projection else vectors
        if self.column is None:
            return np.ascontiguousarray(coarse, np.float32)
        return np.ascontiguousarray(np.hstack([coarse, extra[:, None]]), np.float32)

    def _coarse_rows(self, vectors: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
        return self._coarse(vectors, None if self.column is None else self.column.values[rows])

    def search(self, queries: np.ndarray, k: int, column_weights: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, np.float32)
        weights = np.zeros(len(queries), np.float32) if column_weights is None else column_weights
        _, proposed = self.index.search(self._coarse(queries, weights),
                                        max(k, self.candidates))
        best, best_rows = [], []
        for q, rows in enumerate(proposed):
            rows = np.unique(rows[rows >= 0])
            scores = exact_inner_products(self.vectors, queries[q:q + 1], rows)
            keys = ranking_keys(scores, self.column, None if column_weights is None
                                else column_weights[q:q + 1], rows)[0]
            order = np.argsort(-keys, kind="stable")[:k]
            best.append(scores[0][order])
            best_rows.append(rows[order])
        width = min(len(r) for r in best_rows)
        return np.stack([b[:width] for b in best]), np.stack([r[:width] for r in best_rows])

    def save(self, stem: Path) -> None:
        """Write the faiss index (and the projection) beside the stored vectors."""
        faiss_module().write_index(self.index, str(stem.with_suffix(f".{self.name}.faiss")))
        if self.projection is not None:
            np.save(stem.with_suffix(f".{self.name}.projection.npy"), self.projection.matrix)

    @classmethod
    def load(cls, folder: "IndexFolder", stem: str, vectors: StoredVectors,
             column: Column | None, candidates: int) -> Backend:
        """What `save` wrote, checked against the stored vectors it proposes rows of (and
        their column, one more dimension); exact when nothing was saved (the pattern was too
        small for an approximate index)."""
        name = f"{stem}.{cls.name}.faiss"
        if folder.file(name, required=False) is None:
            return ExactBackend(vectors, column=column)
        try:
            index = faiss_module().read_index(str(folder.file(name)))
        except RuntimeError as err:
            raise folder.damaged(name, f"is not a readable faiss index ({err})") from None
        projection = None
        name_of_projection = f"{stem}.{cls.name}.projection.npy"
        if folder.file(name_of_projection, required=False) is not None:
            matrix = folder.array(name_of_projection, "float32", (None, vectors.slices.width))
            projection = Projection(folder.finite(name_of_projection, matrix))
        dim = vectors.slices.width if projection is None else len(projection.matrix)
        dim += column is not None
        if index.ntotal != len(vectors) or index.d != dim:
            raise folder.damaged(name, f"holds {index.ntotal} vectors of {index.d} dimensions, "
                                 f"not the {len(vectors)} of {dim} its pattern has")
        return cls(index, vectors, projection, candidates, column)
