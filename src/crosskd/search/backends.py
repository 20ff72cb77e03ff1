"""Inner-product search over one pattern's vectors: exact, or approximate then re-ranked.

Every backend answers the same question, the `k` largest inner products <q, x> of a
pattern and their rows, and every answer's value is computed exactly from the stored
vectors: the approximate indexes (faiss IVF and HNSW over 8-bit scalar-quantised, optionally
projected vectors) only propose candidates, which are re-ranked with the stored vectors.
With QB-Norm (crosskd.search.normalisers) a pattern's rows carry one more value, its
`Column`, and a query may weight it: rows are then ranked by <q, x> + w u[row], which the
approximate indexes hold as one more dimension; the values returned stay <q, x>.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from crosskd.errors import UserError
from crosskd.search.normalisers import Column
from crosskd.search.storage import StoredVectors

if TYPE_CHECKING:
    from crosskd.search.index_files import IndexFolder

log = logging.getLogger(__name__)

BACKENDS = ("exact", "ivf", "hnsw")
#: patterns smaller than this are searched exactly whatever the backend (a scan is cheap)
MIN_APPROXIMATE_ROWS = 4096
#: bytes of float32 rows decoded at once by a scan (bounds its memory)
SCAN_BYTES = 1 << 28


def scan_chunk(width: int) -> int:
    """Rows of `width` floats decoded at once."""
    return max(256, SCAN_BYTES // (4 * width))


def faiss_module():
    """faiss when installed (the `search` extra), else None."""
    if importlib.util.find_spec("faiss") is None:
        return None
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # which CPU build it tried
    import faiss
    return faiss


def check_backend(kind: str) -> str:
    """`kind` when it is a backend name, else a UserError naming the choices."""
    if kind not in BACKENDS:
        raise UserError(f"search backend {kind!r} is not one of {', '.join(BACKENDS)}")
    if kind != "exact" and faiss_module() is None:
        raise UserError(f"the {kind} backend needs faiss: pip install 'crosskd[search]'")
    return kind


class Backend(Protocol):
    """`search(queries [Q, width], k, column_weights [Q] or None)` -> (inner products
    `[Q, k']`, rows `[Q, k']`), best first by the inner product plus each query's weight
    times the rows' column (QB-Norm; the column is None without it)."""

    kind: str
    column: Column | None

    def search(self, queries: np.ndarray, k: int, column_weights: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]: ...

    def save(self, stem: Path) -> None: ...


def _top(keys: torch.Tensor, scores: torch.Tensor, rows: torch.Tensor, k: int
         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The `k` best keys of each row, with their scores and rows."""
    best, where = torch.topk(keys, min(k, keys.shape[1]), dim=1)
    return best, torch.gather(scores, 1, where), torch.gather(rows, 1, where)


def _biased(scores: np.ndarray | torch.Tensor, column: Column | None,
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


class ExactBackend:
    """Every row scored: faiss's flat inner-product kernel (IndexFlatIP's, run over the
    stored float32 rows without copying them) when faiss is there, else torch in chunks."""

    kind = "exact"

    def __init__(self, vectors: StoredVectors, use_faiss: bool = True,
                 column: Column | None = None) -> None:
        self.vectors, self.column = vectors, column
        self.faiss = faiss_module() if use_faiss and vectors.dtype == "float32" else None

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
            keys = _biased(scores, self.column, column_weights, slice(start, start + len(block)))
            rows = torch.arange(start, start + len(block)).expand(len(q), -1)
            best_keys, best, best_rows = _top(torch.cat([best_keys, keys], 1),
                                              torch.cat([best, scores], 1),
                                              torch.cat([best_rows, rows], 1), k)
        return best.numpy(), best_rows.numpy()

    def save(self, stem: Path) -> None:
        """Nothing beyond the stored vectors."""


class Projection:
    """An uncentred principal-axes projection `[r, width]`: inner products are kept for
    vectors in the span of the leading axes (centring would change them)."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = np.ascontiguousarray(matrix, np.float32)

    @classmethod
    def fit(cls, sample: np.ndarray, dim: int, seed: int = 0) -> "Projection":
        """The leading `dim` right singular vectors of `sample`, by a randomised range finder
        with two power iterations (a full SVD of 8,192 x 5,376 takes minutes on 2 cores)."""
        rng = np.random.default_rng(seed)
        sample = np.asarray(sample, np.float32)
        basis = sample @ rng.standard_normal((sample.shape[1], dim + 16), dtype=np.float32)
        for _ in range(2):
            basis, _ = np.linalg.qr(sample @ (sample.T @ basis))
        _, _, axes = np.linalg.svd(basis.T @ sample, full_matrices=False)
        return cls(axes[:dim])

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        # torch: numpy's float32 product with a transposed matrix is ~40x slower here
        projected = torch.from_numpy(np.ascontiguousarray(vectors, np.float32)) @ \
            torch.from_numpy(self.matrix).T
        return np.ascontiguousarray(projected.numpy())


class ApproximateBackend:
    """faiss IVF or HNSW over 8-bit codes of (projected) vectors, proposing `candidates`
    rows per query that are re-ranked exactly with the stored vectors. With a `column`
    (QB-Norm), the faiss vectors carry it as one more dimension, where queries put their
    column weight (0 for a raw query)."""

    def __init__(self, kind: str, index, vectors: StoredVectors, projection: Projection | None,
                 candidates: int, column: Column | None = None) -> None:
        self.kind, self.index, self.vectors = kind, index, vectors
        self.projection, self.candidates, self.column = projection, candidates, column

    @classmethod
    def build(cls, kind: str, vectors: StoredVectors, candidates: int = 200,
              project_to: int | None = None, nprobe: int = 32, ef_search: int = 128,
              seed: int = 0, column: Column | None = None) -> "ApproximateBackend":
        """Train and fill the faiss index of `kind` from the stored vectors, in chunks
        (`nprobe` lists of IVF, `ef_search` of HNSW are searched; both are saved with it)."""
        faiss = faiss_module()
        rng = np.random.default_rng(seed)
        n = len(vectors)
        chosen = np.sort(rng.choice(n, min(n, 50_000), replace=False))
        sample = vectors.decode(chosen)
        projection = None
        if project_to is not None and project_to < sample.shape[1]:
            projection = Projection.fit(sample[:8192], project_to)
        backend = cls(kind, None, vectors, projection, candidates, column)
        sample = backend._coarse_rows(sample, chosen)
        dim = sample.shape[1]
        quantiser = faiss.ScalarQuantizer.QT_8bit
        if kind == "ivf":
            lists = int(max(1, min(4 * np.sqrt(n), n // 39)))
            index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, lists, quantiser,
                                                  faiss.METRIC_INNER_PRODUCT)
            index.nprobe = min(lists, nprobe)
        else:
            index = faiss.IndexHNSWSQ(dim, quantiser, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = ef_search
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
            keys = _biased(scores, self.column, None if column_weights is None
                           else column_weights[q:q + 1], rows)[0]
            order = np.argsort(-keys, kind="stable")[:k]
            best.append(scores[0][order])
            best_rows.append(rows[order])
        width = min(len(r) for r in best_rows)
        return np.stack([b[:width] for b in best]), np.stack([r[:width] for r in best_rows])

    def save(self, stem: Path) -> None:
        """Write the faiss index (and the projection) beside the stored vectors."""
        faiss_module().write_index(self.index, str(stem.with_suffix(f".{self.kind}.faiss")))
        if self.projection is not None:
            np.save(stem.with_suffix(f".{self.kind}.projection.npy"), self.projection.matrix)

    @classmethod
    def load(cls, kind: str, folder: "IndexFolder", stem: str, vectors: StoredVectors,
             candidates: int, column: Column | None = None) -> "ApproximateBackend":
        """What `save` wrote, checked against the stored vectors it proposes rows of (and
        their column, one more dimension)."""
        name = f"{stem}.{kind}.faiss"
        try:
            index = faiss_module().read_index(str(folder.file(name)))
        except RuntimeError as err:
            raise folder.damaged(name, f"is not a readable faiss index ({err})") from None
        projection = None
        name_of_projection = f"{stem}.{kind}.projection.npy"
        if folder.file(name_of_projection, required=False) is not None:
            matrix = folder.array(name_of_projection, "float32", (None, vectors.slices.width))
            projection = Projection(folder.finite(name_of_projection, matrix))
        dim = vectors.slices.width if projection is None else len(projection.matrix)
        dim += column is not None
        if index.ntotal != len(vectors) or index.d != dim:
            raise folder.damaged(name, f"holds {index.ntotal} vectors of {index.d} dimensions, "
                                 f"not the {len(vectors)} of {dim} its pattern has")
        return cls(kind, index, vectors, projection, candidates, column)


def build_backend(kind: str, vectors: StoredVectors,
                  approximate_from: int = MIN_APPROXIMATE_ROWS, column: Column | None = None,
                  **options) -> Backend:
    """The backend of `kind` over one pattern's vectors (exact below `approximate_from` rows)."""
    if kind == "exact" or len(vectors) < approximate_from:
        return ExactBackend(vectors, column=column)
    return ApproximateBackend.build(kind, vectors, column=column, **options)


def load_backend(kind: str, folder: "IndexFolder", stem: str, vectors: StoredVectors,
                 candidates: int = 200, column: Column | None = None) -> Backend:
    """The backend `build_backend` made and saved for this pattern."""
    if kind == "exact" or folder.file(f"{stem}.{kind}.faiss", required=False) is None:
        return ExactBackend(vectors, column=column)
    return ApproximateBackend.load(kind, folder, stem, vectors, candidates, column)
