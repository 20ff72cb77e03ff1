"""The ivf backend: faiss inverted lists (k-means cells) of 8-bit codes, `nprobe` cells
searched per query."""

from __future__ import annotations

from typing import Any

import numpy as np

from crosskd.search.backends.approximate import ApproximateBackend
from crosskd.search.backends.base import BackendOption


class IVFBackend(ApproximateBackend):
    """faiss IndexIVFScalarQuantizer: about 4 sqrt(n) lists (at least 39 training rows each)."""

    name = "ivf"
    description = "faiss IVF lists proposing candidates, re-ranked exactly"
    build_options = (*ApproximateBackend.build_options,
                     BackendOption("nprobe", "IVF lists searched", 32))

    @classmethod
    def faiss_index(cls, faiss: Any, dim: int, rows: int, nprobe: int) -> Any:
        lists = int(max(1, min(4 * np.sqrt(rows), rows // 39)))
        index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, lists,
                                              faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
        index.nprobe = min(lists, nprobe)
        return index
