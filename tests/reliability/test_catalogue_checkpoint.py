"""Bad-input catalogue, checkpoint rows (docs/BAD_INPUTS.md K1-K5): `test` and `train --resume`.

A finished one-epoch run is trained once per module; each test works on a copy of its folder
and checks the message, the exit status, that no metrics were written and that the
checkpoints it was handed are byte-for-byte unchanged.
"""

from __future__ import annotations

import json
import pickle
import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from reliability_support import assert_one_line_error, tiny_config, tree_digest
from crosskd.checkpoint.run_state import BEST_NAME, FORMAT, LAST_NAME
from crosskd.cli import main


@pytest.fixture(scope="module")
def finished_run(pristine_dataset, tmp_path_factory) -> tuple[Path, Path]:
    """(run folder, config file) of a one-epoch training on the tiny dataset."""
    root = tmp_path_factory.mktemp("finished")
    config_path = root / "tiny.json"
    config_path.write_text(json.dumps(tiny_config(pristine_dataset, root / "saved", epochs=1)),
                           encoding="utf-8")
    assert main(["train", "--config", str(config_path)]) == 0
    (run_dir,) = (root / "saved" / "tiny").iterdir()
    return run_dir, config_path


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run[0], run_dir)
    return run_dir


def _assert_untouched(run_dir: Path, before: dict[str, str], out: Path) -> None:
    assert tree_digest(run_dir) == before, "a failed command changed the run folder"
    assert not out.exists(), "a failed command wrote metrics"


def test_k1_checkpoint_of_another_architecture(cli, finished_run, run_copy, tmp_path):
    config = json.loads(finished_run[1].read_text())
    config["experts"]["ce_shared_dim"] = 16
    other = tmp_path / "other.json"
    other.write_text(json.dumps(config), encoding="utf-8")
    before, out = tree_digest(run_copy), tmp_path / "metrics.json"
    result = cli("test", "--config", other, "--resume", run_copy / BEST_NAME, "--out", out)
    assert_one_line_error(result, str(run_copy / BEST_NAME), "does not fit the model",
                          "shape mismatch", "use the config the checkpoint was trained with")
    _assert_untouched(run_copy, before, out)


@pytest.mark.parametrize("command", ["test", "train"])
def test_k2_truncated_checkpoint(cli, finished_run, run_copy, tmp_path, command):
    checkpoint = run_copy / (BEST_NAME if command == "test" else LAST_NAME)
    checkpoint.write_bytes(checkpoint.read_bytes()[:4000])
    before, out = tree_digest(run_copy), tmp_path / "metrics.json"
    result = cli(command, "--config", finished_run[1], "--resume", checkpoint, "--out", out)
    assert_one_line_error(result, str(checkpoint))
    _assert_untouched(run_copy, before, out)


def test_k3_resume_folder_without_checkpoints(cli, finished_run, tmp_path):
    empty = tmp_path / "empty_run"
    empty.mkdir()
    result = cli("train", "--config", finished_run[1], "--resume", empty)
    assert_one_line_error(result, str(empty), LAST_NAME, BEST_NAME)
    assert list(empty.iterdir()) == []


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


def test_k4_original_format_checkpoint_carrying_code(cli, finished_run, tmp_path):
    marker = tmp_path / "pwned"
    checkpoint = tmp_path / "trained_model.pth"
    checkpoint.write_bytes(pickle.dumps({"arch": "CENet", "state_dict": {},
                                         "config": _Exploit(marker)}, protocol=2))
    out = tmp_path / "metrics.json"
    result = cli("test", "--config", finished_run[1], "--resume", checkpoint, "--out", out)
    assert_one_line_error(result, str(checkpoint), "system")
    assert not marker.exists(), "the checkpoint's code ran"
    assert not out.exists()


def test_k5_checkpoint_that_does_not_exist(cli, finished_run, tmp_path):
    missing = tmp_path / "model_best.pth"
    result = cli("test", "--config", finished_run[1], "--resume", missing)
    assert_one_line_error(result, str(missing), "no such checkpoint")


class _Popen:
    """Pickles to subprocess.Popen(['touch', marker]): a run checkpoint that starts a process."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import subprocess
        return subprocess.Popen, (["touch", str(self.marker)],)


_TORCH_ADVICE = ("weights_only", "safe_globals", "allowlist", "allow-list", "add_safe",
                 "trust", "documentation")


def _assert_refused_as_unsafe(result, checkpoint, *names):
    line = assert_one_line_error(result, str(checkpoint), "refused as unsafe", *names)
    for advice in _TORCH_ADVICE:
        assert advice not in line, f"the refusal relays torch's advice ({advice!r}): {line}"


@pytest.mark.parametrize("command", ["train", "test"])
def test_k6_run_checkpoint_carrying_code_is_refused_in_our_words(cli, finished_run, run_copy,
                                                                 tmp_path, command):
    marker = tmp_path / "pwned"
    checkpoint = run_copy / LAST_NAME
    torch.save({"format": FORMAT, "epoch": 1, "state_dict": {}, "config_json": "{}",
                "history_json": "[]", "payload": _Popen(marker)}, checkpoint)
    result = cli(command, "--config", finished_run[1], "--resume", checkpoint,
                 "--out", tmp_path / "metrics.json")
    _assert_refused_as_unsafe(result, checkpoint, "subprocess.Popen")
    assert not marker.exists(), "the checkpoint's code ran"
    assert not (tmp_path / "metrics.json").exists()


def _with_pickle(checkpoint: Path, pickle_bytes: bytes) -> None:
    """Replace the pickle inside a zip-format checkpoint, keeping its tensors."""
    with zipfile.ZipFile(checkpoint) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    (pkl,) = [name for name in members if name.endswith("/data.pkl")]
    members[pkl] = pickle_bytes
    with zipfile.ZipFile(checkpoint, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.mark.parametrize("command", ["train", "test"])
def test_k6b_refused_opcode_is_named_not_torch_documentation(cli, finished_run, run_copy,
                                                             tmp_path, command):
    """INST builds subprocess.Popen without a GLOBAL opcode; torch refuses the opcode itself."""
    marker = tmp_path / "pwned"
    checkpoint = run_copy / LAST_NAME
    argv = pickle.dumps(["touch", str(marker)], protocol=2)[2:-1]  # EMPTY_LIST ... APPENDS
    _with_pickle(checkpoint, b"\x80\x02(" + argv + b"isubprocess\nPopen\n.")
    result = cli(command, "--config", finished_run[1], "--resume", checkpoint)
    _assert_refused_as_unsafe(result, checkpoint, "opcode INST (0x69)")
    assert not marker.exists(), "the checkpoint's code ran"


def test_k7_resume_with_a_set_that_changes_the_model(cli, run_copy, tmp_path):
    before = tree_digest(run_copy)
    result = cli("train", "--resume", run_copy, "--set", "experts.ce_shared_dim=16",
                 "--set", "trainer.epochs=2")
    assert_one_line_error(result, str(run_copy / LAST_NAME), "does not fit the model",
                          "shape mismatch")
    assert tree_digest(run_copy) == before, "a refused resume changed the run folder"
