"""torchrun training on the CPU (gloo, two processes) equals one process on the global batch,
evaluation sharded over the ranks gives one process's metrics, and a job torchrun restarts
after a worker's death ends with the uninterrupted weights.

Two processes each embed half of every batch of 8 (the trailing 7 split 4 + 3) and gather
the embeddings, the batch-norm inputs and the teachers; one process trains on the whole
batches. The all-reduce adds the ranks' gradient shares in another order than one
process's backward does, so the two differ by float32 rounding: after four steps most
weights agree to 6e-8 (one ulp), but a weight whose true gradient is zero (the bias of a
linear layer in front of batch norm) moves by rounding noise, which RAdam's division by
the root mean square amplifies (measured 1.5e-6 after six steps). Hence 1e-4.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from crosskd.checkpoint.run_state import BEST_NAME, LAST_NAME, load_run_state
from crosskd.cli import main
from crosskd.config import load_config, parse_experiment
from crosskd.process import ProcessContext
from crosskd.train.evaluate import evaluate_checkpoint
from nested_equality import same_nested
from torchrun_support import (OBJECTIVES, objective_config, quiet_environment, run_torchrun,
                              torchrun_command, write_config)

EPOCHS = 2
#: the run a worker is killed in: long enough that the kill lands before its end.
LONG_EPOCHS = 8
#: float32 rounding of gradients summed in another order (see the module docstring).
TOLERANCE = 1e-4
WORKER = Path(__file__).with_name("torchrun_worker.py")


@pytest.fixture(scope="module")
def two_process_runs(pristine_dataset, tmp_path_factory) -> dict[str, Path]:
    """Every objective trained by `torchrun --nproc_per_node=2` (one launch for all)."""
    folder = tmp_path_factory.mktemp("ddp-runs")
    configs = [write_config(folder, name,
                            objective_config(pristine_dataset, folder / "saved", name, EPOCHS))
               for name in OBJECTIVES]
    configs.append(write_config(folder, "long", objective_config(
        pristine_dataset, folder / "saved", "cecap", LONG_EPOCHS)))
    run_torchrun(torchrun_command(2, WORKER, [str(c) for c in configs]), folder / "torchrun.log")
    return {name: next((folder / "saved" / name).iterdir()) for name in [*OBJECTIVES, "long"]}


@pytest.mark.slow
def test_evaluation_sharded_over_two_ranks_gives_the_metrics_of_one(two_process_runs):
    """The worker evaluated each trained model on the 8-video test split, 4 videos a rank."""
    run = two_process_runs["ttcap"]
    config = run.parents[1].with_name("ttcap.json")
    sharded = json.loads(config.with_suffix(".sharded.json").read_text())
    experiment = parse_experiment(load_config(config)).evaluation()
    single = evaluate_checkpoint(experiment, run / BEST_NAME, ProcessContext())
    assert sharded == json.loads(json.dumps(single))
    assert sharded["protocol"]["num_videos"] == 8


def one_process_run(data_dir: Path, folder: Path, objective: str, epochs: int) -> Path:
    """The objective trained by one process (`crosskd train`); its run folder."""
    folder.mkdir(exist_ok=True)
    config = write_config(folder, objective,
                          objective_config(data_dir, folder / "saved", objective, epochs))
    assert main(["train", "--config", str(config), "--device", "cpu"]) == 0
    return next((folder / "saved" / objective).iterdir())


def assert_close_weights(expected: Path, actual: Path) -> None:
    """Float weights within TOLERANCE, batch counts equal, the same losses logged."""
    left, right = load_run_state(expected), load_run_state(actual)
    assert left["epoch"] == right["epoch"]
    for key, value in left["state_dict"].items():
        other = right["state_dict"][key]
        if value.is_floating_point():
            assert torch.allclose(value, other, rtol=0, atol=TOLERANCE), (
                f"{key}: {(value - other).abs().max().item():.3g} apart")
        else:
            assert torch.equal(value, other), key
    losses = [[row["loss"] for row in state["history"]] for state in (left, right)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_two_processes_train_the_weights_of_one(objective, two_process_runs, pristine_dataset,
                                                tmp_path):
    single = one_process_run(pristine_dataset, tmp_path, objective, EPOCHS)
    assert_close_weights(single / LAST_NAME, two_process_runs[objective] / LAST_NAME)
    written = {path.name for path in two_process_runs[objective].iterdir()}
    assert written == {path.name for path in single.iterdir()}  # rank 0 wrote the whole folder


@pytest.mark.slow
def test_a_checkpoint_of_two_processes_resumes_on_one(two_process_runs, pristine_dataset,
                                                      tmp_path):
    resumed = tmp_path / "resumed"
    shutil.copytree(two_process_runs["cecap"], resumed)
    assert main(["train", "--resume", str(resumed), "--device", "cpu",
                 "--set", f"trainer.epochs={EPOCHS + 1}"]) == 0
    single = one_process_run(pristine_dataset, tmp_path / "single", "cecap", EPOCHS + 1)
    assert_close_weights(single / LAST_NAME, resumed / LAST_NAME)


def _workers(launcher: int) -> dict[int, int]:
    """Rank -> pid of the workers a torchrun process started (read from /proc)."""
    ranks = {}
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or (entry / "stat").read_text().split()[3] != str(
                    launcher):
                continue
            environ = dict(item.split("=", 1) for item in
                           (entry / "environ").read_bytes().decode().split("\0") if "=" in item)
        except OSError:
            continue
        if "RANK" in environ:
            ranks[int(environ["RANK"])] = int(entry.name)
    return ranks


def _wait_for(condition, process: subprocess.Popen, what: str):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if found := condition():
            return found
        assert process.poll() is None, f"torchrun ended before {what}"
        time.sleep(0.01)
    raise AssertionError(f"no {what} after 120 s")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds workers in /proc")
def test_a_killed_worker_restarts_the_job_which_ends_with_the_uninterrupted_weights(
        two_process_runs, pristine_dataset, tmp_path):
    config = write_config(tmp_path, "long", objective_config(
        pristine_dataset, tmp_path / "saved", "cecap", LONG_EPOCHS))
    command = torchrun_command(2, WORKER, [str(config)], restarts=1)
    with open(tmp_path / "torchrun.log", "wb") as log:
        launcher = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                    env=quiet_environment(), start_new_session=True)
        try:
            _wait_for(lambda: list(tmp_path.glob(f"saved/long/*/{LAST_NAME}")), launcher,
                      "a checkpoint")
            workers = _wait_for(lambda: _workers(launcher.pid), launcher, "the workers")
            os.kill(workers[max(workers)], signal.SIGKILL)
            assert launcher.wait(timeout=180) == 0, (tmp_path / "torchrun.log").read_text()
        finally:
            if launcher.poll() is None:  # torchrun and its workers: none may outlive the test
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait()
    (run,) = [path for path in (tmp_path / "saved" / "long").iterdir() if path.is_dir()]
    starts = json.loads((run / "run.json").read_text())["invocations"]
    assert len(starts) == 2, "the restarted job did not continue the run folder"
    assert not list((tmp_path / "saved" / "long").glob(".torchrun-*"))
    reference = two_process_runs["long"]
    for name in (LAST_NAME, BEST_NAME):
        expected, resumed = load_run_state(reference / name), load_run_state(run / name)
        for key in ("epoch", "state_dict", "optimizer", "history"):
            assert same_nested(expected[key], resumed[key]), f"{name}: {key} differs"
