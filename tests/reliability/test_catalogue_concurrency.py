"""Bad-input catalogue, concurrency rows (docs/BAD_INPUTS.md R4): runs started side by side.

A parallel sweep starts several runs of one config in the same second; each must get a run
folder of its own (claimed by an atomic mkdir), or they delete each other's temporary
checkpoints and mix their files.
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest

from reliability_support import assert_one_line_error, tiny_config, tree_digest
from crosskd.checkpoint.run_state import BEST_NAME, LAST_NAME, load_run_state
from crosskd.train.runs import TEST_METRICS_NAME, run_folder

REPO_ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 8


def _claim(save_dir: str, barrier, results) -> None:
    """In a child process: wait for every sibling, then claim a run folder for seed 0."""
    barrier.wait()
    results.put(str(run_folder(save_dir, "sweep", 0, "2026-01-01_00-00-00")))


def test_r4_runs_claimed_in_the_same_second_by_parallel_processes_get_own_folders(tmp_path):
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    children = [context.Process(target=_claim, args=(str(tmp_path), barrier, results))
                for _ in range(PROCESSES)]
    for child in children:
        child.start()
    claimed = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert len(set(claimed)) == PROCESSES, f"two processes were given one folder: {claimed}"
    assert all(Path(path).is_dir() for path in claimed)
    base = tmp_path / "sweep" / "2026-01-01_00-00-00_seed0"
    assert str(base) in claimed and str(base.with_name(base.name + "-2")) in claimed


def test_r4b_a_folder_that_exists_is_never_handed_out(tmp_path):
    first = run_folder(tmp_path, "exp", 3, "stamp")
    (first / "checkpoint_last.pth").write_bytes(b"another run's file")
    second = run_folder(tmp_path, "exp", 3, "stamp")
    assert second != first and second.is_dir() and list(second.iterdir()) == []
    assert (first / "checkpoint_last.pth").read_bytes() == b"another run's file"


@pytest.mark.slow
def test_r4c_two_train_processes_started_together_both_finish(pristine_dataset, tmp_path):
    """End to end: two `train.py` runs of one config, started at once, with different --set."""
    config_path = tmp_path / "sweep.json"
    config_path.write_text(json.dumps(tiny_config(pristine_dataset, tmp_path / "saved")),
                           encoding="utf-8")
    runs = [subprocess.Popen([sys.executable, "train.py", "--config", str(config_path),
                              "--device", "cpu", "--set", f"optimizer.args.lr={lr}"],
                             cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for lr in (0.01, 0.02)]
    outputs = [run.communicate(timeout=300)[0].decode(errors="replace") for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    folders = sorted((tmp_path / "saved" / "sweep").iterdir())
    assert len(folders) == 2
    rates = set()
    for folder in folders:
        assert (folder / TEST_METRICS_NAME).is_file() and (folder / BEST_NAME).is_file()
        assert not list(folder.glob(".*.tmp"))
        rates.add(load_run_state(folder / LAST_NAME)["config"]["optimizer"]["args"]["lr"])
    assert rates == {0.01, 0.02}, "a run folder holds the other run's checkpoint"


_HOLD = ("import fcntl, os, sys, time\n"
         "handle = os.open(sys.argv[1], os.O_RDONLY)\n"
         "fcntl.flock(handle, fcntl.LOCK_EX)\n"
         "print('locked', flush=True)\n"
         "time.sleep(120)\n")


def test_r4d_resuming_a_run_that_another_process_is_writing_is_refused(cli, workspace):
    config = workspace.config
    config["trainer"]["epochs"] = 1
    workspace.write_config(config)
    assert cli("train", "--config", workspace.config_path).status == 0
    (run_dir,) = workspace.run_dirs()
    before = tree_digest(run_dir)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(run_dir)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = cli("train", "--resume", run_dir, "--set", "trainer.epochs=2")
    finally:
        holder.kill()
        holder.wait()
    assert_one_line_error(result, str(run_dir), "in use by another crosskd process")
    assert tree_digest(run_dir) == before, "the refused resume changed the run folder"
    assert cli("train", "--resume", run_dir, "--set", "trainer.epochs=2").status == 0
