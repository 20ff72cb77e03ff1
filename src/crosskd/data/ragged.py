"""Vectorised gathering of ragged token sequences into zero-padded dense arrays."""

from __future__ import annotations

import numpy as np


def _exclusive_cumsum(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts), np.int64)
    np.cumsum(counts[:-1], out=out[1:])
    return out


def gather_segments(values: np.ndarray, seg_start: np.ndarray, seg_rows: np.ndarray,
                    seg_owner: np.ndarray, num_owners: int,
                    max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate row segments per owner, truncate to `max_len` and zero-pad.

    Segments of one owner must be consecutive and in order. Returns `out` [num_owners, max_len,
    D] float32 and the number of rows kept per owner. No Python loop over samples.
    """
    seg_rows = np.asarray(seg_rows, np.int64)
    total = int(seg_rows.sum())
    token_owner = np.repeat(seg_owner, seg_rows)
    token_src = np.repeat(seg_start - _exclusive_cumsum(seg_rows), seg_rows) + np.arange(total)
    owner_total = np.bincount(seg_owner, weights=seg_rows, minlength=num_owners).astype(np.int64)
    position = np.arange(total) - _exclusive_cumsum(owner_total)[token_owner]
    keep = position < max_len
    out = np.zeros((num_owners, max_len, values.shape[1]), np.float32)
    if keep.any():
        out[token_owner[keep], position[keep]] = values[token_src[keep]]
    return out, np.minimum(owner_total, max_len)


def gather_rows(values: np.ndarray, start: np.ndarray, rows: np.ndarray,
                max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """One segment per output row: `[N, max_len, D]` zero-padded, plus the rows kept."""
    owners = np.arange(len(start))
    return gather_segments(values, start, rows, owners, len(start), max_len)
