"""The conformance mini dataset loads and gives the same tensors the original builds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from crosskd.data.sampling import EpochSampler, epoch_batches
from crosskd.config import data_spec, load_config, with_eval_settings
from crosskd.data.retrieval import RetrievalData


@pytest.fixture(scope="module")
def golden(conformance):
    return np.load(conformance / "forward_golden.npz"), json.loads(
        (conformance / "forward_golden.json").read_text())


@pytest.fixture(scope="module")
def data(conformance, tmp_path_factory):
    config = with_eval_settings(load_config(conformance / "configs" / "msrvtt-mini-ttcap.json"))
    config["data_loader"]["args"]["data_dir"] = str(conformance / "data" / "MSRVTT-mini")
    return RetrievalData.load(data_spec(config), cache_dir=tmp_path_factory.mktemp("cache"))


def test_full_test_split_masks_equal_golden(data, golden):
    arrays, meta = golden
    assert data.eval.video_ids == meta["test_split_video_ids"]
    np.testing.assert_array_equal(data.eval.query_masks, arrays["test_split_query_masks"])
    np.testing.assert_array_equal(data.eval.text_token_mask(), arrays["test_split_text_token_mask"])
    assert data.eval.num_queries == 478


def test_eval_batch_equals_golden(data, golden):
    arrays, _ = golden
    batch = data.eval.batch(np.arange(8))
    for name, tensor in batch.experts.items():
        expected = np.nan_to_num(arrays[f"eval_in_experts/{name}"], nan=0.0)
        np.testing.assert_array_equal(tensor.numpy(), expected, err_msg=name)
        np.testing.assert_array_equal(batch.ind[name].numpy(), arrays[f"eval_in_ind/{name}"])
    np.testing.assert_array_equal(batch.text.numpy(), arrays["eval_in_text"])
    np.testing.assert_array_equal(batch.text_token_mask.numpy(), arrays["eval_in_text_token_mask"])


def test_eval_batches_cover_split_in_order(data):
    batches = list(data.eval.batches(10))
    assert [len(b.video_ids) for b in batches] == [10, 10, 4]
    assert sum((b.video_ids for b in batches), []) == data.eval.video_ids


def test_train_batch_matches_golden_inputs(data, golden, conformance):
    arrays, meta = golden
    ids = meta["train_batch_video_ids"]
    idx = np.array([data.train.video_ids.index(v) for v in ids])
    batch = data.train.batch(EpochSampler.for_split(data.train, len(idx)).draw(
        idx, np.random.default_rng(0)))
    for name, tensor in batch.experts.items():
        expected = np.nan_to_num(arrays[f"train_in_experts/{name}"], nan=0.0)
        np.testing.assert_array_equal(tensor.numpy(), expected, err_msg=name)
        np.testing.assert_array_equal(batch.ind[name].numpy(), arrays[f"train_in_ind/{name}"])
    captions = data.train.features.captions
    text = batch.text.numpy()[:, 0]
    for row, i in enumerate(idx):
        kept = int(batch.text_token_mask[row, 0])
        candidates = []
        for c in range(captions.num[i]):
            cap = captions.first[i] + c
            start, rows = captions.cap_start[cap], captions.cap_rows[cap]
            dense = np.zeros_like(text[row])
            dense[:rows] = captions.values[start:start + rows]
            candidates.append(dense)
        assert any(np.array_equal(text[row], c) for c in candidates)
        assert kept == min(12, int(np.count_nonzero(np.abs(text[row]).sum(1))))
    # teacher tensors follow the same sampled caption
    for t, per_mod in batch.distil_video.items():
        for mod, tensor in per_mod.items():
            np.testing.assert_allclose(tensor.numpy(), arrays[f"train_in_distil_video/{t}/{mod}"],
                                       rtol=0, atol=0)


def test_train_epoch_visits_every_video_once(data):
    rng = np.random.default_rng(3)
    seen = [v for b in epoch_batches(data.train, 16, rng) for v in b.video_ids]
    assert sorted(seen) == sorted(data.train.video_ids)
    assert len(seen) == data.train.num_videos == 48


def test_caption_sampling_is_reproducible(data):
    first = [b.text for b in epoch_batches(data.train, 16, np.random.default_rng(7))]
    second = [b.text for b in epoch_batches(data.train, 16, np.random.default_rng(7))]
    assert all((a == b).all() for a, b in zip(first, second))


def test_second_load_uses_cache(conformance, tmp_path):
    config = with_eval_settings(load_config(conformance / "configs" / "msrvtt-mini-cecap.json"))
    config["data_loader"]["args"]["data_dir"] = str(conformance / "data" / "MSRVTT-mini")
    RetrievalData.load(data_spec(config), cache_dir=tmp_path)
    entries = sorted(p.name for p in tmp_path.iterdir())
    again = RetrievalData.load(data_spec(config), cache_dir=tmp_path, dtype="float32")
    assert sorted(p.name for p in tmp_path.iterdir()) == entries
    half = RetrievalData.load(data_spec(config), cache_dir=tmp_path, dtype="float16")
    np.testing.assert_allclose(half.eval.batch(np.arange(4)).text.numpy(),
                               again.eval.batch(np.arange(4)).text.numpy(), atol=1e-2, rtol=1e-2)
