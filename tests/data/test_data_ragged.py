"""Vectorised ragged gathering equals a per-sample loop."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from crosskd.data.ragged import gather_segments


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 6), max_size=4), min_size=1, max_size=6),
       st.integers(1, 8))
def test_gather_segments_matches_loop(owners_rows, max_len):
    values = np.arange(200 * 2, dtype=np.float32).reshape(200, 2)
    starts, rows, owner = [], [], []
    cursor = 0
    for o, segs in enumerate(owners_rows):
        for r in segs:
            starts.append(cursor)
            rows.append(r)
            owner.append(o)
            cursor += r + 1
    out, kept = gather_segments(values, np.array(starts, np.int64), np.array(rows, np.int64),
                                np.array(owner, np.int64), len(owners_rows), max_len)
    for o, segs in enumerate(owners_rows):
        pieces = [values[s:s + r] for s, r, w in zip(starts, rows, owner) if w == o]
        joined = np.concatenate(pieces)[:max_len] if pieces else np.zeros((0, 2), np.float32)
        expected = np.zeros((max_len, 2), np.float32)
        expected[:len(joined)] = joined
        np.testing.assert_array_equal(out[o], expected)
        assert kept[o] == len(joined)
