"""The device-resident training split draws exactly the batches of the host one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crosskd.config import model_spec
from crosskd.data.sampling import epoch_batches
from crosskd.train.resident import ResidentTrainSplit, resident_bytes, resident_supported
from train_support import run_config


@pytest.fixture
def data(tiny_msrvtt):
    return tiny_msrvtt


def test_resident_batches_equal_host_batches(data):
    _, loaded = data
    resident = ResidentTrainSplit(loaded.train, torch.device("cpu"))
    host = epoch_batches(loaded.train, 8, np.random.default_rng(3))
    mine = epoch_batches(resident, 8, np.random.default_rng(3))
    count = 0
    for expected, got in zip(host, mine, strict=True):
        assert got.video_ids == expected.video_ids
        torch.testing.assert_close(got.text, expected.text, rtol=0, atol=0)
        for name in expected.experts:
            torch.testing.assert_close(got.experts[name], expected.experts[name], rtol=0, atol=0)
            torch.testing.assert_close(got.ind[name], expected.ind[name], rtol=0, atol=0)
        count += 1
    assert count == -(-loaded.train.num_videos // 8)
    assert resident_bytes(loaded.train) == 4 * sum(
        t.numel() for t in [resident.text, *resident.experts.values(), *resident.ind.values()])


def test_resident_support(data):
    _, loaded = data
    assert resident_supported(loaded.train)
    loaded.train.fuse_captions = True
    try:
        assert not resident_supported(loaded.train)
    finally:
        loaded.train.fuse_captions = False


def test_resident_eval_split_scores_like_the_host_split(data):
    from crosskd.models import build_model
    from crosskd.inference import score_split
    from crosskd.train.resident import ResidentEvalSplit
    config, loaded = data
    torch.manual_seed(0)
    model = build_model(model_spec(config))
    cpu = torch.device("cpu")
    resident = ResidentEvalSplit(loaded.eval, cpu)
    assert resident.num_videos == loaded.eval.num_videos
    np.testing.assert_array_equal(score_split(model, resident, cpu, caption_chunk=7),
                                  score_split(model, loaded.eval, cpu, caption_chunk=7))


def test_bf16_runs_hold_the_caption_tokens_in_bf16(data):
    _, loaded = data
    resident = ResidentTrainSplit(loaded.train, torch.device("cpu"), torch.bfloat16)
    assert resident.text.dtype is torch.bfloat16
    token_bytes = 2 * resident.text.numel()
    assert resident_bytes(loaded.train) - resident_bytes(loaded.train, torch.bfloat16) == \
        token_bytes


@pytest.mark.parametrize("amp", [None, "bf16"])
def test_training_on_resident_data_is_identical(data, tmp_path, amp):
    """Also under bf16 autocast with the resident tokens held in bf16: autocast casts them to
    bf16 for every product anyway."""
    from trainers import trainer_for
    config, loaded = data
    histories = []
    for resident in (False, True):
        run = run_config(config, tmp_path, epochs=2, resident_data=resident, amp=amp)
        trainer = trainer_for(run, tmp_path / f"run{resident}", data=loaded)
        assert isinstance(trainer.train_batches, ResidentTrainSplit) == resident
        histories.append(trainer.train().history)
    assert histories[0] == histories[1]
