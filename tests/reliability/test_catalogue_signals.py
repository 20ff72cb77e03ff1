"""Bad-input catalogue, signal rows (docs/BAD_INPUTS.md R9, L8): stops at awkward moments.

Ctrl-C while the program is still importing torch, and SIGTERM (how batch schedulers stop
a job) during training, each end in one line and a conventional exit status; SIGTERM during
training stops like Ctrl-C at the next batch boundary with a resumable checkpoint
(tests/reliability/test_interrupt_resume.py), and no temporary checkpoint is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reliability_support import tiny_config
from crosskd import cli as crosskd_cli
from crosskd.checkpoint import run_state
from crosskd.checkpoint.run_state import LAST_NAME, load_run_state

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_l8_ctrl_c_while_importing_the_commands(cli, monkeypatch):
    def interrupted(name):
        raise KeyboardInterrupt

    monkeypatch.setattr(crosskd_cli.importlib, "import_module", interrupted)
    result = cli("train", "--config", "any.json")
    assert result.status == 130
    assert "Traceback" not in result.stderr
    assert "crosskd train: interrupted" in result.stderr.splitlines()


@pytest.mark.parametrize("delay", [0.3, 0.8])
def test_l8b_ctrl_c_early_in_a_real_process(tmp_path, delay):
    """SIGINT a fresh `train.py` while it imports torch (no config is even read yet)."""
    process = subprocess.Popen([sys.executable, "train.py", "--config", str(tmp_path / "x")],
                               cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    stderr = process.communicate(timeout=60)[1]
    assert "Traceback" not in stderr, stderr[-3000:]
    if process.returncode != 2:  # 2: the import finished first and the config was missing
        assert process.returncode == 130, stderr[-3000:]
        assert "crosskd train: interrupted" in stderr.splitlines(), stderr[-3000:]


def test_r9_sigterm_during_training_unwinds_like_ctrl_c(pristine_dataset, tmp_path):
    config = tiny_config(pristine_dataset, tmp_path / "saved", epochs=100_000)
    config_path = tmp_path / "long.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    log = open(tmp_path / "stderr.txt", "w+", encoding="utf-8")  # a pipe could fill and block
    process = subprocess.Popen([sys.executable, "train.py", "--config", str(config_path),
                                "--device", "cpu"], cwd=REPO_ROOT, stderr=log,
                               stdout=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "saved").glob(f"*/*/{LAST_NAME}")):
        assert process.poll() is None and time.monotonic() < deadline, "no checkpoint came"
        time.sleep(0.01)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    log.close()
    stderr = (tmp_path / "stderr.txt").read_text(encoding="utf-8")
    assert process.returncode == 143, f"exit status {process.returncode}: {stderr[-3000:]}"
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]  # the batch in hand finished, then a checkpoint
    assert last.startswith("crosskd train: error: SIGTERM received: stopped after"), last
    assert f"--resume {next((tmp_path / 'saved' / 'long').iterdir())}" in last
    (run_dir,) = (tmp_path / "saved" / "long").iterdir()
    assert not list(run_dir.glob(".*.tmp")), "a temporary checkpoint was left behind"
    assert load_run_state(run_dir / LAST_NAME)["epoch"] >= 1
    assert not (run_dir / "test_metrics.json").exists()


class _InterruptingFile:
    """Passes writes to the real file; the fifth delivers a real SIGINT to this process, so
    the handler runs inside a callback of torch's C++ zip writer, as a Ctrl-C can (torch then
    raises RuntimeError "unexpected pos" instead of KeyboardInterrupt)."""

    def __init__(self, handle):
        self._handle, self._calls = handle, 0

    def write(self, data):
        self._calls += 1
        if self._calls == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return self._handle.write(data)

    def flush(self):
        self._handle.flush()


def test_r3b_ctrl_c_while_a_checkpoint_is_written_is_an_interrupt_not_a_full_disk(
        cli, workspace, monkeypatch):
    real_save = run_state.torch.save

    def save(payload, handle, *args, **kwargs):
        if payload.get("epoch") == 2:
            handle = _InterruptingFile(handle)
        return real_save(payload, handle, *args, **kwargs)

    monkeypatch.setattr(run_state.torch, "save", save)
    result = cli("train", "--config", workspace.config_path)
    assert result.status == 130, result.stderr[-3000:]
    assert "crosskd train: interrupted" in result.stderr.splitlines()
    assert "unexpected pos" not in result.stderr and "space" not in result.stderr
    (run_dir,) = workspace.run_dirs()
    assert not list(run_dir.glob(".*.tmp")), "a temporary checkpoint was left behind"
    assert load_run_state(run_dir / LAST_NAME)["epoch"] in (1, 2)
