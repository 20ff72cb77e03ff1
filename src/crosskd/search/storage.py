"""How a pattern's video vectors are kept on disk: float32, float16 or 8-bit codes.

Exact search is exact over what is stored: float32 reproduces the model's scores, float16
and int8 trade a rounding of each embedding for half or a quarter of the memory. The 8-bit
codes keep one scale per video and expert (each expert's block is L2-normalised by the
model, so its entries lie in [-1, 1] and a per-block scale loses little).
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crosskd.errors import UserError
from crosskd.search.patterns import ExpertSlices

if TYPE_CHECKING:
    from crosskd.search.index_files import IndexFolder

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
    def load(cls, folder: "IndexFolder", stem: str, slices: ExpertSlices, rows: int,
             dtype: str) -> "StoredVectors":
        """Memory-map what `save` wrote (pages are read when rows are used), checked against
        the `rows` and `dtype` the manifest gives."""
        codes = folder.array(f"{stem}.npy", dtype, (rows, slices.width), mmap=True)
        if dtype != "int8":
            return cls(codes, None, slices)
        scales = folder.array(f"{stem}.scale.npy", "float32", (rows, len(slices.experts)),
                              mmap=True)
        return cls(codes, folder.finite(f"{stem}.scale.npy", scales, 0), slices)


def read_rows(array: np.ndarray, start: int, stop: int) -> np.ndarray:
    """A copy of `array[start:stop]`, read from the file when `array` maps a whole .npy file:
    a mapping keeps every page it touched in the process's memory, so a pass over all the
    rows of a large file through it would hold the whole file at its end."""
    stop = min(stop, len(array))
    if not (isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap)
            and array.filename and array.flags.c_contiguous) or stop <= start:
        return np.array(array[start:stop])
    with open(array.filename, "rb") as handle:
        handle.seek(array.offset + start * array.strides[0])
        values = np.fromfile(handle, array.dtype, (stop - start) * (array.size // len(array)))
    return values.reshape((stop - start,) + array.shape[1:])
