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


def test_reading_a_split_batch_by_batch_leaves_no_pages_resident(tmp_path):
    """The host splits release what each batch read as they hand it out, so reading a whole
    split grows the resident set by a batch, not by the split (the 4.6 GB of MSRVTT's
    full-test tokens)."""
    from crosskd.config import as_experiment
    from crosskd.data.retrieval import RetrievalData
    from crosskd.data.synth import SynthSpec, example_config, write_synthetic

    spec = SynthSpec(videos=240, captions_per_video=20, caption_tokens=(20, 30))
    write_synthetic(spec, tmp_path / "MSRVTT")
    config = example_config(spec, tmp_path / "MSRVTT", split_name="full-test")
    config["data_loader"]["args"]["batch_size"] = 8
    config.update({"optimizer": {"type": "RAdam", "args": {"lr": 0.01}},
                   "loss": {"type": "MaxMarginRankingLoss", "args": {"margin": 0.1}},
                   "trainer": {"save_dir": str(tmp_path / "runs")}})
    experiment = as_experiment(config)
    data = RetrievalData.load(experiment.data, tmp_path / "cache")
    before, delivered = _rss_file_kib(), 0
    for batch in data.eval.batches(4):
        delivered += batch.text.numel() * batch.text.element_size()
    assert delivered > 16 * 2**20  # enough to see: tens of MiB of caption tokens read
    assert (_rss_file_kib() - before) * 1024 < delivered / 8
