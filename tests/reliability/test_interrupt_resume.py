"""Ctrl-C / SIGTERM: the batch in hand finishes, a checkpoint records the position inside the
epoch, the command exits 130 / 143 naming it, and --resume ends bit-exactly where an
uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crosskd.checkpoint.run_state import BEST_NAME, LAST_NAME, load_run_state
from crosskd.cli import main
from crosskd.train.interrupts import TrainingInterrupted
from crosskd.train.trainer import Trainer
from trainers import trainer_for
from nested_equality import same_nested
from reliability_support import tiny_config

EPOCHS = 3


class _SignalAt:
    """A step runner that raises `signum` in this process right after its `at`-th batch."""

    def __init__(self, runner, at: int, signum: int) -> None:
        self.runner, self.at, self.signum, self.calls = runner, at, signum, 0

    def __call__(self, tag, batch):
        done = self.runner(tag, batch)
        self.calls += 1
        if self.calls == self.at:
            signal.raise_signal(self.signum)
        return done

    def __getattr__(self, name):
        return getattr(self.runner, name)


def _trainer(config: dict, run_dir: Path) -> Trainer:
    return trainer_for(config, run_dir)


@pytest.mark.parametrize("signum, epochs_before, batch", [
    (signal.SIGINT, 1, 2),   # inside epoch 2
    (signal.SIGTERM, 0, 1),  # after the first batch of all
    (signal.SIGINT, 0, -1),  # after the last batch of epoch 1, before its validation
])
def test_interrupted_then_resumed_equals_uninterrupted(pristine_dataset, tmp_path, signum,
                                                       epochs_before, batch):
    config = tiny_config(pristine_dataset, tmp_path / "saved", epochs=EPOCHS)
    config["data_loader"]["args"]["batch_size"] = 4
    reference = _trainer(config, tmp_path / "reference")
    reference.train()

    interrupted = _trainer(config, tmp_path / "run")
    per_epoch = len(interrupted.sampler)
    assert per_epoch >= 3
    at = epochs_before * per_epoch + (batch if batch > 0 else per_epoch + 1 + batch)
    interrupted.runner = _SignalAt(interrupted.runner, at, signum)
    with pytest.raises(TrainingInterrupted) as stopped:
        interrupted.train()
    assert stopped.value.exit_code == 128 + signum
    assert signal.Signals(signum).name in str(stopped.value)
    assert f"--resume {tmp_path / 'run'}" in str(stopped.value)
    state = load_run_state(tmp_path / "run" / LAST_NAME)
    assert state["epoch"] == epochs_before
    assert state["position"]["batches_done"] == at - per_epoch * epochs_before
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers put back

    resumed = _trainer(config, tmp_path / "run")
    resumed.resume(tmp_path / "run" / LAST_NAME)
    resumed.train()
    assert resumed.history == reference.history
    for name in (LAST_NAME, BEST_NAME):
        expected = load_run_state(tmp_path / "reference" / name)
        got = load_run_state(tmp_path / "run" / name)
        for key in ("epoch", "best_epoch", "state_dict", "optimizer", "lr_scheduler",
                    "history"):
            assert same_nested(expected[key], got[key]), (name, key)


def _wait_for(path_glob, root: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not list(root.glob(path_glob)):
        assert process.poll() is None and time.monotonic() < deadline, "training never started"
        time.sleep(0.01)


@pytest.mark.slow
def test_sigterm_from_outside_exits_143_and_names_the_checkpoint(pristine_dataset, tmp_path):
    config = tiny_config(pristine_dataset, tmp_path / "saved", epochs=500)
    path = tmp_path / "long.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "crosskd.cli", "train", "--config",
                                str(path), "--device", "cpu"], stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, env=env, text=True)
    try:
        _wait_for("*/*/metrics.csv", tmp_path / "saved", process)  # an epoch has ended
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, err
    last = err.strip().splitlines()[-1]
    assert "SIGTERM received" in last and LAST_NAME in last and "--resume" in last
    (run_dir,) = (tmp_path / "saved" / "long").iterdir()
    assert main(["train", "--resume", str(run_dir), "--device", "cpu",
                 "--set", "trainer.epochs=3"]) == 0
