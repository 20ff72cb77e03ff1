"""The exact backend: every row of a pattern scored, the default and the fallback of every
other backend (patterns too small to need one, indexes whose backend's package is absent)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from crosskd.search.backends.base import Backend, faiss_module
from crosskd.search.normalisers import Column
from crosskd.search.storage import StoredVectors

if TYPE_CHECKING:
    from crosskd.search.index_files import IndexFolder

#: bytes of float32 rows decoded at once by a scan (bounds its memory)
SCAN_BYTES = 1 << 28


def scan_chunk(width: int) -> int:
    """Rows of `width` floats decoded at once."""
    return max(256, SCAN_BYTES // (4 * width))


def _top(keys: torch.Tensor, scores: torch.Tensor, rows: torch.Tensor, k: int
         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The `k` best keys of each row, with their scores and rows."""
    best, where = torch.topk(keys, min(k, keys.shape[1]), dim=1)
    return best, torch.gather(scores, 1, where), torch.gather(rows, 1, where)


def ranking_keys(scores: np.ndarray | torch.Tensor, column: Column | None,
                 column_weights: np.ndarray | None, rows: np.ndarray | slice
                 ) -> np.ndarray | torch.Tensor:
    """The ranking keys: `scores` plus each query's weight times the rows' column values."""
    if column_weights is None:
        return scores
    values = column.values[rows]
    if isinstance(scores, torch.Tensor):
        return scores + torch.from_numpy(column_weights)[:, None] * torch.from_numpy(values)
    return scores + column_weights[:, None] * values


def exact_inner_products(vectors: StoredVectors, queries: np.ndarray, rows: np.ndarray | None,
                         ) -> np.ndarray:
    """`[Q, n]` inner products of the queries with the stored rows (all rows when None)."""
    decoded = torch.from_numpy(vectors.decode(slice(None) if rows is None else rows))
    return (torch.from_numpy(np.ascontiguousarray(queries, np.float32)) @ decoded.T).numpy()


class ExactBackend(Backend):
    """Every row scored: faiss's flat inner-product kernel (IndexFlatIP's, run over the
    stored float32 rows without copying them) when faiss is there, else torch in chunks."""

    name = "exact"
    description = "every video scored, by faiss's flat kernel when installed, else torch"

    def __init__(self, vectors: StoredVectors, use_faiss: bool = True,
                 column: Column | None = None) -> None:
        self.vectors, self.column = vectors, column
        self.faiss = faiss_module() if use_faiss and vectors.dtype == "float32" else None

    @classmethod
    def build(cls, vectors: StoredVectors, column: Column | None) -> "ExactBackend":
        return cls(vectors, column=column)

    @classmethod
    def load(cls, folder: "IndexFolder", stem: str, vectors: StoredVectors,
             column: Column | None) -> "ExactBackend":
        """Nothing to read beyond the stored vectors."""
        return cls(vectors, column=column)

    def search(self, queries: np.ndarray, k: int, column_weights: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self.vectors))
        queries = np.ascontiguousarray(queries, np.float32)
        if self.faiss is not None and column_weights is None:
            scores, rows = self.faiss.knn(queries, np.ascontiguousarray(self.vectors.codes), k,
                                          metric=self.faiss.METRIC_INNER_PRODUCT)
            return scores, rows
        return self._scan(queries, k, column_weights)

    def _scan(self, queries: np.ndarray, k: int, column_weights: np.ndarray | None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Torch over chunks of decoded rows (faiss's kernel adds no per-row term)."""
        best_keys, best = torch.empty(len(queries), 0), torch.empty(len(queries), 0)
        best_rows = torch.empty(len(queries), 0, dtype=torch.int64)
        q = torch.from_numpy(queries)
        chunk = scan_chunk(self.vectors.slices.width)
        for start in range(0, len(self.vectors), chunk):
            block = torch.from_numpy(self.vectors.decode(slice(start, start + chunk)))
            scores = q @ block.T
            keys = ranking_keys(scores, self.column, column_weights,
                                slice(start, start + len(block)))
            rows = torch.arange(start, start + len(block)).expand(len(q), -1)
            best_keys, best, best_rows = _top(torch.cat([best_keys, keys], 1),
                                              torch.cat([best, scores], 1),
                                              torch.cat([best_rows, rows], 1), k)
        return best.numpy(), best_rows.numpy()

    def save(self, stem: Path) -> None:
        """Nothing beyond the stored vectors."""
