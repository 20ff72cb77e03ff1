"""Model selection, optimizer/scheduler building, device choice and result tables."""

from __future__ import annotations

import logging

import pytest
import torch

from crosskd.config import ConfigError, optimizer_spec, scheduler_spec
from crosskd.errors import UserError
from crosskd.train.device import resolve_device
from crosskd.config.monitor import Monitor
from crosskd.optim import build_optimizer, build_scheduler
from crosskd.train.report import format_result, summarize_seeds

PROTOCOL = {"dataset": "MSRVTT", "split": "full-test", "captions_per_video": 20,
            "num_queries": 478, "num_videos": 24}


def test_monitor_ties_go_to_the_later_epoch():
    monitor = Monitor.parse("max val_x")
    assert monitor.key == "val_x"
    assert monitor.improved(5.0, 5.0) and monitor.improved(6.0, 5.0)
    assert not monitor.improved(4.9, 5.0)
    low = Monitor.parse("min val_loss")
    assert low.improved(1.0, 1.0) and not low.improved(1.1, 1.0)
    with pytest.raises(ConfigError, match="trainer.monitor"):
        Monitor.parse("best val_x")


def test_optimizer_and_scheduler_follow_the_config():
    params = [torch.nn.Parameter(torch.ones(2))]
    config = {"optimizer": {"type": "RAdam", "args": {"lr": 1e-3, "weight_decay": 1e-5}},
              "lr_scheduler": {"type": "StepLR", "args": {"step_size": 1, "gamma": 0.5}}}
    optimizer = build_optimizer(optimizer_spec(config), params)
    assert isinstance(optimizer, torch.optim.RAdam)
    assert optimizer.defaults["weight_decay"] == 1e-5
    scheduler = build_scheduler(scheduler_spec(config), optimizer)
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    with pytest.raises(ConfigError, match="Lion"):
        build_optimizer(optimizer_spec({"optimizer": {"type": "Lion", "args": {}}}), params)


def test_device_is_chosen_aloud_and_refused_where_it_does_not_exist(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="crosskd.train.device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device(None).type == "cpu"
    assert "no CUDA GPU is visible" in caplog.text
    assert resolve_device("0").type == "cpu"  # the original README's command line
    assert "--device 0 runs on the CPU" in caplog.text
    for spec in ("cuda", "cuda:0", "cuda:1", "1"):
        with pytest.raises(UserError, match="no CUDA GPU is visible"):
            resolve_device(spec)
    with pytest.raises(UserError, match="--device"):
        resolve_device("gpu-two")


def test_without_a_device_flag_the_first_gpu_runs(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="crosskd.train.device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: "Test GPU")
    assert resolve_device(None) == torch.device("cuda", 0)
    assert "the first visible GPU" in caplog.text and "Test GPU" in caplog.text
    assert resolve_device("cuda") == resolve_device("0") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == resolve_device("1") == torch.device("cuda", 1)
    with pytest.raises(UserError, match="only 2 GPU"):
        resolve_device("cuda:2")


def _metrics(r1: float) -> dict:
    row = {"R1": r1, "R5": 2 * r1, "R10": 3 * r1, "R50": 90.0, "MedR": 4.0, "MeanR": 9.0,
           "geometric_mean_R1-R5-R10": r1}
    return {"t2v": row, "v2t": dict(row), "protocol": PROTOCOL}


def test_seed_summary_mean_and_std_with_the_protocol():
    summary = summarize_seeds({0: _metrics(10.0), 1: _metrics(20.0)})
    assert set(summary["runs"]) == {"0", "1"}
    assert summary["mean"]["t2v"]["R1"] == 15.0 and summary["std"]["t2v"]["R1"] == 5.0
    assert summary["mean"]["protocol"] == PROTOCOL
    text = format_result("cecap", summary)
    assert "15.0 (5.0)" in text and "mean (std, ddof=0) over 2 seeds" in text
    assert "MSRVTT full-test split, 20 caption(s) per video, 478 queries" in text
