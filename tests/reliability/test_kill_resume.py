"""SIGKILL a training run from outside at a random point, resume it, get the same weights.

`python3 train.py` runs in a subprocess on a tiny synthetic dataset; once its checkpoints
exist it is killed after a seeded random delay of 0-3 epochs (possibly in the middle of an
epoch or of a checkpoint write). `train.py --resume <run folder>` then finishes the run, and
its final weights, optimiser state, per-epoch log and test metrics must equal those of an
uninterrupted run with the same seed, bit for bit (CPU).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from reliability_support import tiny_config
from crosskd.checkpoint.run_state import BEST_NAME, LAST_NAME, load_run_state
from crosskd.cli import main
from nested_equality import same_nested

REPO_ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 8
KILL_SEED = 20221204


def _write_config(folder: Path, data_dir: Path) -> Path:
    path = folder / "killme.json"
    path.write_text(json.dumps(tiny_config(data_dir, folder / "saved", epochs=EPOCHS)),
                    encoding="utf-8")
    return path


def _wait(condition, process: subprocess.Popen, what: str):
    """Poll `condition()` until it returns something truthy while the run is still alive."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        assert process.poll() is None, f"training ended before {what}"
        time.sleep(0.005)
    raise AssertionError(f"no {what} after 120 s")


def _kill_at_random_point(config_path: Path, save_dir: Path) -> tuple[Path, float]:
    """Start train.py; SIGKILL it a seeded random 0-3 epochs after its second checkpoint.

    The delay is a multiple of the measured epoch time, so the kill lands inside the run
    however fast the machine is.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(save_dir.parent / "killed.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "train.py"), "--config", str(config_path),
             "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            first = _wait(lambda: next(iter(save_dir.glob(f"*/*/{LAST_NAME}")), None), process,
                          "the first checkpoint")
            started, inode = time.monotonic(), first.stat().st_ino
            _wait(lambda: first.stat().st_ino != inode, process, "the second checkpoint")
            epoch_seconds = time.monotonic() - started
            delay = random.Random(KILL_SEED).uniform(0.0, 3.0) * epoch_seconds
            time.sleep(delay)
            process.send_signal(signal.SIGKILL)
            assert process.wait(timeout=60) == -signal.SIGKILL, (
                "the run finished before the kill; raise EPOCHS")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return first.parent, delay


def test_sigkilled_run_resumes_to_the_uninterrupted_weights(pristine_dataset, tmp_path):
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    reference_config = _write_config(reference_dir, pristine_dataset)
    assert main(["train", "--config", str(reference_config), "--device", "cpu",
                 "--out", str(reference_dir / "out.json")]) == 0
    (reference_run,) = (reference_dir / "saved" / "killme").iterdir()

    killed_dir = tmp_path / "killed"
    killed_dir.mkdir()
    run_dir, delay = _kill_at_random_point(_write_config(killed_dir, pristine_dataset),
                                           killed_dir / "saved")
    survived = load_run_state(run_dir / LAST_NAME)  # atomic writes: always a whole checkpoint
    assert 1 <= survived["epoch"] < EPOCHS, f"killed {delay:.3f} s after the second checkpoint"
    print(f"killed {delay:.3f} s after the second checkpoint; resuming from epoch "
          f"{survived['epoch']} of {EPOCHS}")

    assert main(["train", "--resume", str(run_dir), "--device", "cpu",
                 "--out", str(killed_dir / "out.json")]) == 0

    for name in (LAST_NAME, BEST_NAME):
        expected, resumed = load_run_state(reference_run / name), load_run_state(run_dir / name)
        for key in ("epoch", "best_epoch", "monitor_best", "state_dict", "optimizer",
                    "lr_scheduler", "history"):
            assert same_nested(expected[key], resumed[key]), (
                f"{name}: {key} differs after a kill at epoch {survived['epoch']} "
                f"(+{delay:.3f} s)")
    assert ((reference_dir / "out.json").read_text()
            == (killed_dir / "out.json").read_text())
    assert ((reference_run / "metrics.json").read_text()
            == (run_dir / "metrics.json").read_text())
