"""Bad-input catalogue, command-line and run-time rows (docs/BAD_INPUTS.md L1-L9, R1-R4).

Flags users mistype, output locations that cannot be written, a disk that fills while a
checkpoint is saved, a diverging loss and Ctrl-C: each ends with one line and a non-zero
status, never a result presented as complete, never a damaged previous checkpoint.
"""

from __future__ import annotations

import errno
import json

import pytest
import torch

from reliability_support import assert_one_line_error
from crosskd.checkpoint import run_state
from crosskd.checkpoint.run_state import LAST_NAME, load_run_state
from crosskd.errors import UserError
from crosskd.train.trainer import Trainer
from trainers import trainer_for


def _train(cli, workspace, *extra):
    return cli("train", "--config", workspace.config_path, *extra)


def _assert_no_run(workspace):
    assert workspace.run_dirs() == []


def _assert_stopped_after_epoch_one(workspace, out):
    """The run folder holds the intact epoch-1 checkpoint and nothing that looks finished."""
    (run_dir,) = workspace.run_dirs()
    assert load_run_state(run_dir / LAST_NAME)["epoch"] == 1
    assert not list(run_dir.glob(".*.tmp")), "a temporary checkpoint was left behind"
    assert not (run_dir / "test_metrics.json").exists()
    assert not out.exists()
    return run_dir


def test_l1_device_index_without_that_gpu(cli, workspace):
    assert_one_line_error(_train(cli, workspace, "--device", "3"), "--device '3'", "cpu")
    _assert_no_run(workspace)


def test_l1b_device_index_beyond_the_visible_gpus(cli, workspace, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert_one_line_error(_train(cli, workspace, "--device", "3"), "--device '3'",
                          "only 1 GPU(s) visible")
    _assert_no_run(workspace)


def test_l2_device_that_is_not_an_index(cli, workspace):
    assert_one_line_error(_train(cli, workspace, "--device", "gpu"), "--device 'gpu'",
                          "'cpu' or 'cuda:N'")
    _assert_no_run(workspace)


def test_l3_seeds_that_are_not_integers(cli, workspace):
    assert_one_line_error(_train(cli, workspace, "--seeds", "0,x"), "--seeds '0,x'", "0,1,2")
    _assert_no_run(workspace)


@pytest.mark.parametrize("flag, value", [("--seeds", "0,\u0663"), ("--device", "\u00b2"),
                                         ("--device", "\u0663")])
def test_l3b_numbers_in_other_digits(cli, workspace, flag, value):
    """Only ASCII digits are numbers (int() reads '٣' as 3; '²' passes str.isdigit)."""
    assert_one_line_error(_train(cli, workspace, flag, value), f"{flag} {value!r}")
    _assert_no_run(workspace)


def test_l4_resume_together_with_seeds(cli, workspace):
    assert_one_line_error(_train(cli, workspace, "--resume", workspace.save_dir,
                                 "--seeds", "0,1"), "--resume", "drop --seeds")
    _assert_no_run(workspace)


def test_l5_output_folder_not_writable(cli, workspace):
    blocker = workspace.save_dir.parent / "not_a_folder"
    blocker.write_text("a file where the runs folder should be", encoding="utf-8")
    config = workspace.config
    config["trainer"]["save_dir"] = str(blocker / "runs")
    workspace.write_config(config)
    assert_one_line_error(_train(cli, workspace), str(blocker), "trainer.save_dir")
    assert blocker.read_text(encoding="utf-8").startswith("a file")


def test_l6_metrics_file_not_writable(cli, workspace):
    blocker = workspace.save_dir.parent / "not_a_folder"
    blocker.write_text("x", encoding="utf-8")
    assert_one_line_error(_train(cli, workspace, "--out", blocker / "metrics.json"), "--out",
                          str(blocker))
    _assert_no_run(workspace)


def test_l6b_metrics_file_not_writable_for_test(cli, workspace):
    """`test` checks --out before loading anything (the checkpoint here does not even exist)."""
    blocker = workspace.save_dir.parent / "not_a_folder"
    blocker.write_text("x", encoding="utf-8")
    assert_one_line_error(cli("test", "--resume", workspace.save_dir / "missing.pth",
                              "--out", blocker / "metrics.json"), "--out", str(blocker))
    assert blocker.read_text(encoding="utf-8") == "x"


def test_l6c_metrics_file_that_is_a_folder(cli, workspace):
    folder = workspace.save_dir.parent / "metrics"
    folder.mkdir()
    assert_one_line_error(_train(cli, workspace, "--out", folder), "--out", str(folder),
                          "is a folder")
    _assert_no_run(workspace)
    assert list(folder.iterdir()) == []


def _disk_fills_at_epoch(monkeypatch, epoch: int) -> None:
    """torch.save writes part of the file, then the disk is full (ENOSPC), from `epoch` on."""
    real_save = torch.save

    def save(payload, handle, *args, **kwargs):
        if isinstance(payload, dict) and payload.get("epoch", 0) >= epoch:
            handle.write(b"PK\x03\x04 partial checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(payload, handle, *args, **kwargs)

    monkeypatch.setattr(run_state.torch, "save", save)


def test_r1_disk_full_while_saving(cli, workspace, monkeypatch):
    _disk_fills_at_epoch(monkeypatch, epoch=2)
    out = workspace.save_dir / "out.json"
    result = _train(cli, workspace, "--out", out)
    line = assert_one_line_error(result, "No space left on device", ".pth",
                                 "previous checkpoint there is intact", "--resume")
    run_dir = _assert_stopped_after_epoch_one(workspace, out)
    assert str(run_dir) in line


def test_r1b_disk_full_keeps_the_previous_checkpoint(workspace, monkeypatch):
    """The atomic writer's half of R1: the failed save leaves the epoch-1 checkpoint loadable."""
    _disk_fills_at_epoch(monkeypatch, epoch=2)
    trainer = trainer_for(workspace.config, workspace.save_dir / "x" / "run")
    with pytest.raises(UserError, match="No space left"):
        trainer.train()
    _assert_stopped_after_epoch_one(workspace, workspace.save_dir / "out.json")


def _diverge_in_epoch_two(cli, workspace, out):
    """SGD whose step size jumps from 1e-2 to 1e30 after the first epoch: the loss turns NaN."""
    return _train(cli, workspace, "--set", "optimizer.type=SGD",
                  "--set", 'optimizer.args={"lr": 0.01}',
                  "--set", "lr_scheduler.args.gamma=1e32", "--out", out)


def test_r2_non_finite_loss_stops_with_epoch_and_batch(cli, workspace):
    out = workspace.save_dir / "out.json"
    line = assert_one_line_error(_diverge_in_epoch_two(cli, workspace, out),
                                 "loss became nan", "epoch 2, batch", "last good checkpoint")
    run_dir = _assert_stopped_after_epoch_one(workspace, out)
    assert str(run_dir / LAST_NAME) in line


def test_r2b_non_finite_loss_in_the_first_epoch_names_no_phantom_checkpoint(cli, workspace):
    result = _train(cli, workspace, "--set", "optimizer.type=SGD",
                    "--set", 'optimizer.args={"lr": 1e30}')
    line = assert_one_line_error(result, "epoch 1, batch")
    (run_dir,) = workspace.run_dirs()
    assert not (run_dir / LAST_NAME).exists()
    assert str(run_dir / LAST_NAME) not in line


def test_r3_interrupted_run_keeps_its_last_checkpoint(cli, workspace, monkeypatch):
    real_epoch = Trainer._train_epoch

    def interrupted(self, epoch, stop):  # a KeyboardInterrupt from outside the batch loop
        if epoch == 2:
            raise KeyboardInterrupt
        return real_epoch(self, epoch, stop)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupted)
    out = workspace.save_dir / "out.json"
    result = _train(cli, workspace, "--out", out)
    assert result.status == 130
    assert "interrupted" in result.stderr.splitlines()[-1]
    _assert_stopped_after_epoch_one(workspace, out)


@pytest.mark.parametrize("seeds", ["-1", "0,4294967296"])
def test_l7_seed_out_of_range_on_the_command_line(cli, workspace, seeds):
    assert_one_line_error(_train(cli, workspace, "--seeds", seeds), f"--seeds '{seeds}'",
                          "out of range", "2**32 - 1")
    _assert_no_run(workspace)


def test_l7b_seed_out_of_range_in_the_config(cli, workspace):
    assert_one_line_error(_train(cli, workspace, "--set", f"seed={2**40}"), "config key seed",
                          str(2**40), "out of range")
    _assert_no_run(workspace)


@pytest.mark.parametrize("content", ["{not json", '["a", "list"]',
                                     '{"format": 1, "machine": "another CPU", "choices": {}}'])
def test_l9_a_damaged_product_table_is_measured_again(cli, workspace, monkeypatch, tmp_path,
                                                      content):
    """The measured product table lives in the user's cache: a file there that is not our
    table for this machine is not trusted; training measures again and writes it afresh."""
    table = tmp_path / "products.json"
    table.write_text(content, encoding="utf-8")
    monkeypatch.setenv("CROSSKD_PRODUCT_TABLE", str(table))
    assert _train(cli, workspace).status == 0
    written = json.loads(table.read_text(encoding="utf-8"))
    assert written["choices"] and set(written["choices"].values()) <= {"torch", "onednn"}
