"""Pages read from memory-mapped features stop counting in the resident set once released."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crosskd.data.mapped import release_mapped_pages


def _rss_file_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("RssFile:"):
                return int(line.split()[1])
    raise AssertionError("no RssFile in /proc/self/status")


@dataclass
class _Captions:
    values: np.ndarray


@dataclass
class _Features:
    captions: _Captions
    variable: dict


@dataclass
class _Split:
    features: _Features


def test_released_pages_leave_the_resident_set_and_the_data_intact(tmp_path):
    data = np.arange(16 * 2**20 // 4, dtype=np.float32).reshape(-1, 1024)  # 16 MiB
    np.save(tmp_path / "values.npy", data)
    values = np.load(tmp_path / "values.npy", mmap_mode="r")
    split = _Split(_Features(_Captions(values), {"audio": _Captions(values[:10])}))
    before = _rss_file_kib()
    assert float(values.sum(dtype=np.float64)) == float(data.sum(dtype=np.float64))
    touched = _rss_file_kib()
    assert touched - before > 12 * 1024
    release_mapped_pages(split)
    assert touched - _rss_file_kib() > 12 * 1024
    np.testing.assert_array_equal(values[-3:], data[-3:])
    release_mapped_pages(_Split(None))  # nothing mapped: a no-op
    release_mapped_pages(object())
