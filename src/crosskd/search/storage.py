"""How a pattern's video vectors are kept on disk: float32, float16 or 8-bit codes.

Exact search is exact over what is stored: float32 reproduces the model's scores, float16
and int8 trade a rounding of each embedding for half or a quarter of the memory. The 8-bit
codes keep one scale per video and expert (each expert's block is L2-normalised by the
model, so its entries lie in [-1, 1] and a per-block scale loses little).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crosskd.errors import UserError
from crosskd.search.patterns import ExpertSlices

DTYPES = ("float32", "float16", "int8")


def check_dtype(dtype: str) -> str:
    """`dtype` when it is a storage type, else a UserError naming the choices."""
    if dtype not in DTYPES:
        raise UserError(f"index storage {dtype!r} is not one of {', '.join(DTYPES)}")
    return dtype


@dataclass
class StoredVectors:
    """One pattern's vectors `[N, width]` as stored, decoded to float32 on demand."""

    codes: np.ndarray
    scales: np.ndarray | None
    slices: ExpertSlices

    @classmethod
    def empty(cls, rows: int, slices: ExpertSlices, dtype: str) -> "StoredVectors":
        """Room for `rows` vectors of `dtype`, filled by `write`."""
        scales = np.ones((rows, len(slices.experts)), np.float32) if dtype == "int8" else None
        return cls(np.zeros((rows, slices.width), dtype), scales, slices)

    @classmethod
    def encode(cls, vectors: np.ndarray, slices: ExpertSlices, dtype: str) -> "StoredVectors":
        """Store float32 `vectors` `[N, width]` as `dtype`."""
        stored = cls.empty(len(vectors), slices, dtype)
        stored.write(np.arange(len(vectors)), vectors)
        return stored

    def write(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Store float32 `vectors` at `rows`."""
        if self.scales is None:
            self.codes[rows] = vectors
            return
        blocks = self.slices.split(vectors)
        scales = np.stack([np.abs(b).max(axis=1) / 127.0 for b in blocks], axis=1)
        scales = np.where(scales > 0, scales, 1.0).astype(np.float32)
        self.scales[rows] = scales
        self.codes[rows] = np.concatenate(
            [np.rint(b / scales[:, i, None]) for i, b in enumerate(blocks)], axis=1)

    def __len__(self) -> int:
        return self.codes.shape[0]

    @property
    def dtype(self) -> str:
        return str(self.codes.dtype)

    def decode(self, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """`[n, width]` float32 vectors of the given rows."""
        codes = np.asarray(self.codes[rows], np.float32)
        if self.scales is None:
            return codes
        scales = np.asarray(self.scales[rows], np.float32)
        return np.repeat(scales, self.slices.widths, axis=1) * codes

    def save(self, stem: Path) -> None:
        """Write `stem.npy` (and `stem.scale.npy` for 8-bit codes)."""
        np.save(stem.with_suffix(".npy"), self.codes)
        if self.scales is not None:
            np.save(stem.with_suffix(".scale.npy"), self.scales)

    @classmethod
    def load(cls, stem: Path, slices: ExpertSlices) -> "StoredVectors":
        """Memory-map what `save` wrote (pages are read when rows are used)."""
        codes = np.load(stem.with_suffix(".npy"), mmap_mode="r")
        scale_path = stem.with_suffix(".scale.npy")
        scales = np.load(scale_path, mmap_mode="r") if scale_path.is_file() else None
        return cls(codes, scales, slices)
