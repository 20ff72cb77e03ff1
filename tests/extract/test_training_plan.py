"""The training plan of generated configs: a length in optimizer steps that fits the
collection (a floor, a ceiling, the base's learning-rate decay spread over it), ties of
validation broken, and one line when an evaluation split is too small to mean much."""

from __future__ import annotations

import json
import logging
import math

import pytest

from crosskd.config import load_config, trainer_spec
from crosskd.extract.training_plan import (MAX_EPOCHS, MAX_STEPS, MIN_STEPS,
                                           batches_per_epoch, plan_training)
from crosskd.shipped import config_dir

BASES = ["demo/msrvtt-demo-ce.json", "msrvtt-train-gpt2-xl-finetuned-mte-adam-ce.json"]


def _base(name: str) -> dict:
    config = load_config(config_dir() / name)
    config.pop("inherit_from", None)
    return config


def _total_decay(config: dict) -> float:
    return config["lr_scheduler"]["args"]["gamma"] ** config["trainer"]["epochs"]


def _steps(config: dict, train_videos: int) -> int:
    batches = batches_per_epoch(train_videos, config["data_loader"]["args"]["batch_size"])
    return config["trainer"]["epochs"] * batches


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("train_videos", [280, 500])
def test_a_small_collection_trains_for_the_floor_of_steps(base, train_videos):
    before = _base(base)
    config = plan_training(_base(base), train_videos)
    batches = batches_per_epoch(train_videos, config["data_loader"]["args"]["batch_size"])
    assert abs(_steps(config, train_videos) - MIN_STEPS) <= batches / 2
    assert config["trainer"]["epochs"] <= MAX_EPOCHS
    assert _total_decay(config) == pytest.approx(_total_decay(before))


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("train_videos", [2, 3, 45, 48])
def test_a_tiny_collection_is_not_passed_over_more_than_the_epoch_ceiling(base, train_videos):
    before = _base(base)
    config = plan_training(_base(base), train_videos)
    assert config["trainer"]["epochs"] == MAX_EPOCHS
    assert _steps(config, train_videos) < MIN_STEPS
    assert _total_decay(config) == pytest.approx(_total_decay(before))


@pytest.mark.parametrize("base", BASES)
def test_a_collection_of_the_recipes_size_keeps_its_epochs_and_schedule(base):
    before = _base(base)
    batch_size = before["data_loader"]["args"]["batch_size"]
    train_videos = batch_size * math.ceil(MIN_STEPS / before["trainer"]["epochs"])
    config = plan_training(_base(base), train_videos)
    assert config["trainer"] == before["trainer"]
    assert config["lr_scheduler"] == before["lr_scheduler"]


@pytest.mark.parametrize("base", BASES)
def test_a_huge_collection_trains_for_at_most_the_ceiling(base):
    before = _base(base)
    config = plan_training(_base(base), 2_000_000)
    assert config["trainer"]["epochs"] == 1  # 31,250 batches of 64 or 62,500 of 32
    config = plan_training(_base(base), 40_000)
    assert _steps(config, 40_000) <= MAX_STEPS < _steps(before, 40_000)
    assert _total_decay(config) == pytest.approx(_total_decay(before))


def test_batches_per_epoch_are_the_trainers():
    assert [batches_per_epoch(n, 32) for n in (1, 2, 32, 33, 34, 45)] == [1, 1, 1, 1, 2, 2]


def test_given_steps_override_the_plan():
    config = plan_training(_base(BASES[0]), 45, steps=150)
    assert config["trainer"]["epochs"] == 75


def test_extract_writes_a_plan_that_fits_and_warns_of_small_splits(tmp_path, caplog):
    from crosskd.cli import main
    from crosskd.extract.synthetic_videos import write_collection

    captions = write_collection(tmp_path / "videos", 10)
    out = tmp_path / "data"
    with caplog.at_level(logging.WARNING):
        assert main(["extract", str(tmp_path / "videos"), "--captions", str(captions),
                     "--out", str(out), "--experts", "demo", "--text-encoder", "demo"]) == 0
    warned = [r.getMessage() for r in caplog.records if "split holds only" in r.getMessage()]
    assert len(warned) == 2 and "1 video(s)" in warned[0] and "R@5 100.0 %" in warned[0]
    assert "2 video(s)" in warned[1] and "R@1 50.0 %" in warned[1]
    for name in ("config.json", "config-cecap.json"):
        config = json.loads((out / name).read_text())
        assert config["trainer"]["epochs"] == MAX_EPOCHS  # one batch of 32 an epoch
        assert trainer_spec(config).tie_break.key == "val_t2v_metrics_MeanR"
    caplog.clear()
    assert main(["train", "--config", str(out / "config.json"), "--device", "cpu",
                 "--set", "trainer.epochs=1"]) == 0
    (run,) = (out / "runs" / "config").iterdir()
    assert (run / "train.log").read_text().count("split holds only") == 2  # val, then test
