"""`python3 test.py` on the original checkpoint reproduces the original's test metrics exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from crosskd.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = "checkpoints/msrvtt-mini-cecap_seed0_trained_model.pth"
LEGACY = "checkpoints/msrvtt-mini-cecap_seed0_trained_model_legacy_format.pth"


def _check(conformance: Path, out: Path) -> None:
    expected = json.loads((conformance / "expected_test_metrics.json").read_text())
    metrics = json.loads(out.read_text())
    assert metrics["t2v"] == expected["t2v_metrics"]
    assert metrics["v2t"] == expected["v2t_metrics"]
    protocol = metrics["protocol"]
    assert protocol["split"] == "full-test" and protocol["captions_per_video"] == 20
    assert protocol["num_queries"] == expected["num_valid_queries"] == 478


def test_original_command_line_reproduces_expected_metrics(conformance, tmp_path):
    out = tmp_path / "m.json"
    command = [sys.executable, str(REPO_ROOT / "test.py"),
               "--config", "configs/msrvtt-mini-cecap.json", "--resume", CHECKPOINT,
               "--eval_from_training_config", "--out", str(out)]
    done = subprocess.run(command, cwd=conformance, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    _check(conformance, out)


def test_legacy_format_checkpoint_gives_the_same_metrics(conformance, tmp_path, monkeypatch):
    monkeypatch.chdir(conformance)  # the config's data_dir is relative to this folder
    out = tmp_path / "m.json"
    assert main(["test", "--config", "configs/msrvtt-mini-cecap.json", "--resume", LEGACY,
                 "--eval_from_training_config", "--out", str(out)]) == 0
    _check(conformance, out)
