"""Runs of an experiment: run folders, training then the final test, several seeds."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch

from crosskd.checkpoint.run_state import BEST_NAME, load_run_state, resolve_resume_path
from crosskd.config import Config, ExperimentConfig, as_experiment, require
from crosskd.data.retrieval import RetrievalData
from crosskd.diskwrites import reported_write, write_error, write_text_atomically
from crosskd.errors import UserError
from crosskd.train.evaluate import evaluate_checkpoint
from crosskd.train.distributed import Distributed
from crosskd.train.elastic import claim_run_folder, forget_run_folder
from crosskd.train.history import log_test_metrics
from crosskd.train.report import describe_protocol, format_result, summarize_seeds
from crosskd.train.run_record import LOG_NAME, RECORD_NAME, RunRecord, recorded_run
from crosskd.train.seed_range import check_seed
from crosskd.train.trainer import CONFIG_NAME, Trainer

try:
    import fcntl
except ImportError:  # Windows: runs are not locked against each other
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

TEST_METRICS_NAME = "test_metrics.json"
SUMMARY_NAME = "summary.json"
SUMMARY_MD_NAME = "summary.md"
_MAX_CLAIMS = 1000  # run folders of one name (timestamp and seed) before giving up


def run_folder(config: Config, experiment: str, seed: int, timestamp: str) -> Path:
    """Create and return `<trainer.save_dir>/<experiment>/<timestamp>_seed<seed>`, never a
    folder that exists: the name is claimed by an atomic mkdir (a suffix `-2`, `-3`, ... is
    added on a clash), so runs started in the same second, in parallel, get folders of their own.
    """
    base = experiment_folder(config, experiment) / f"{timestamp}_seed{seed}"
    fix = "set trainer.save_dir to a folder you can write"
    with reported_write(base, fix, action="create the run folder"):
        base.parent.mkdir(parents=True, exist_ok=True)
    for suffix in range(1, _MAX_CLAIMS + 1):
        path = base if suffix == 1 else base.with_name(f"{base.name}-{suffix}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as err:
            raise write_error(path, err, fix, action="create the run folder") from None
        return path
    raise UserError(f"cannot create a run folder beside {base}: {_MAX_CLAIMS} folders of that "
                    "name exist already; remove old runs or set trainer.save_dir")


def experiment_folder(config: Config, experiment: str) -> Path:
    """`<trainer.save_dir>/<experiment>`, where an experiment's run folders are made."""
    require(config, "trainer", (dict, type(None)), default=None)
    return Path(require(config, "trainer.save_dir", str, default="data/saved")) / experiment


@contextlib.contextmanager
def exclusive_run_folder(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run folder itself (flock on its directory, no file is
    added) while a run writes it: two processes resuming one run would delete each other's
    temporary checkpoints and interleave their epochs. Released when the process ends."""
    if fcntl is None:
        yield
        return
    handle = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"run folder {run_dir} is in use by another crosskd process (a "
                            "training or a resume of the same run); wait for it to finish, "
                            "or resume a copy of the folder") from None
        yield
    finally:
        os.close(handle)


@contextlib.contextmanager
def _removed_if_unused(run_dir: Path) -> Iterator[None]:
    """Remove a claimed run folder that a run failing before training (an error found in the
    data, say) left holding only its log and record."""
    try:
        yield
    except BaseException:
        if not (run_dir / CONFIG_NAME).exists():
            for name in (LOG_NAME, RECORD_NAME):
                (run_dir / name).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # only succeeds on an empty folder
        raise


def final_test(config: ExperimentConfig | Config, run_dir: Path, device: torch.device,
               cache_dir: Path | None = None) -> dict[str, Any]:
    """Test the selected (best) model with `eval_settings` merged in; saved beside the run."""
    experiment = as_experiment(config)
    metrics = evaluate_checkpoint(experiment.evaluation(), run_dir / BEST_NAME, device,
                                  cache_dir)
    write_text_atomically(run_dir / TEST_METRICS_NAME, json.dumps(metrics, indent=1) + "\n",
                          f"free disk space and test again with crosskd test --resume {run_dir}")
    if experiment.trainer.tensorboard:
        log_test_metrics(run_dir, experiment.raw, metrics)
    t2v = metrics["t2v"]
    log.info("final test of %s: t2v R@1 %.1f, R@5 %.1f, R@10 %.1f, MdR %g (%s)", run_dir,
             t2v["R1"], t2v["R5"], t2v["R10"], t2v["MedR"], describe_protocol(metrics["protocol"]))
    return metrics


def train_and_test(config: ExperimentConfig | Config, run_dir: Path, device: torch.device,
                   resume: Path | None = None, cache_dir: Path | None = None,
                   command: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """Train one run (or finish a resumed one), then run the final test on its best model;
    `command` (argv, overrides) goes into the run folder's run.json, the log into train.log.
    Under torchrun, ranks other than 0 train only, write nothing and return None."""
    experiment = as_experiment(config)
    job = Distributed.from_environment()
    if job is not None and not job.writes_files:
        data = RetrievalData.load(experiment.data, cache_dir=cache_dir)
        _train(experiment, run_dir, device, data, resume, None)
        return None
    with recorded_run(run_dir, device, command or {}) as record:
        data = RetrievalData.load(experiment.data, cache_dir=cache_dir)
        _train(experiment, run_dir, device, data, resume, record)
        return final_test(experiment, run_dir, device, data.cache_dir)


def _train(experiment: ExperimentConfig, run_dir: Path, device: torch.device,
           data: RetrievalData, resume: Path | None, record: RunRecord | None) -> None:
    """Train one run; the model and optimizer are freed on return, before the final test."""
    trainer = Trainer(experiment, run_dir, device, seed=experiment.seed, data=data)
    if resume is not None:
        trainer.resume(resume)
    if record is not None:
        record.begin()
    result = trainer.train()
    log.info("run %s: best epoch %d (%s = %.4f)", run_dir, result.best_epoch,
             trainer.monitor.key or "epoch", result.monitor_best)


def train_seeds(config: ExperimentConfig | Config, experiment: str, seeds: Sequence[int],
                device: torch.device, cache_dir: Path | None = None,
                command: Mapping[str, Any] | None = None) -> dict[int, dict[str, Any]]:
    """One run per seed (same config otherwise); the final test metrics of each. With several
    seeds, their summary goes to summary.json and summary.md in the experiment folder.

    The features are packed once for all seeds (into `cache_dir`, else a temporary folder).
    Under torchrun rank 0 claims the folders (a restarted job continues its run,
    crosskd.train.elastic) and alone returns metrics; the other ranks return {}.
    """
    for seed in seeds:
        check_seed(seed, "config key seed")
    timestamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    base = as_experiment(config)
    results = {}
    job = Distributed.from_environment()
    with tempfile.TemporaryDirectory(prefix="crosskd-cache-") as scratch:
        for seed in seeds:
            seeded = base.with_seed(seed)
            run_dir, resume = claim_run_folder(
                lambda: run_folder(seeded.raw, experiment, seed, timestamp),
                experiment_folder(seeded.raw, experiment), seed, job)
            log.info("training seed %d in %s", seed, run_dir)
            with _writer_guards(run_dir, job):
                metrics = train_and_test(seeded, run_dir, device, resume=resume,
                                         cache_dir=cache_dir or Path(scratch), command=command)
            forget_run_folder(experiment_folder(seeded.raw, experiment), seed, job)
            if metrics is not None:
                results[int(seed)] = metrics
    if len(results) > 1:
        write_seed_summary(run_dir.parent, experiment, results)
    return results


@contextlib.contextmanager
def _writer_guards(run_dir: Path, job: Distributed | None) -> Iterator[None]:
    """The run folder locked and, if the run fails before training, removed again: by the
    process that writes it (rank 0 under torchrun)."""
    if job is not None and not job.writes_files:
        yield
        return
    with _removed_if_unused(run_dir), exclusive_run_folder(run_dir):
        yield


def write_seed_summary(folder: Path, experiment: str, results: dict[int, dict[str, Any]]
                       ) -> None:
    """summary.json (every seed, mean, std and its ddof) and summary.md (the tables)."""
    summary = summarize_seeds(results)
    fix = "free disk space; every run's own test_metrics.json is kept"
    write_text_atomically(folder / SUMMARY_NAME, json.dumps(summary, indent=1) + "\n", fix)
    table = format_result(experiment, summary)
    write_text_atomically(folder / SUMMARY_MD_NAME,
                          f"# {experiment}: {len(results)} seeds\n\n```\n{table}\n```\n", fix)
    log.info("wrote the summary of %d seeds to %s", len(results), folder / SUMMARY_NAME)


def resume_run(resume: str | Path, overrides: Callable[[Config], Config], device: torch.device,
               cache_dir: Path | None = None, command: Mapping[str, Any] | None = None
               ) -> tuple[int, dict[str, Any]]:
    """Finish the run a checkpoint belongs to, in its folder.

    `overrides` turns the stored config into the one to use (e.g. more epochs); the seed
    always stays the stored one, since the RNG states continue from the checkpoint.
    """
    checkpoint = resolve_resume_path(resume)
    stored = load_run_state(checkpoint)["config"]
    experiment = as_experiment({**overrides(stored), "seed": stored.get("seed", 0)})
    job = Distributed.from_environment()
    lock = (exclusive_run_folder(checkpoint.parent) if job is None or job.writes_files
            else contextlib.nullcontext())
    with lock:
        return experiment.seed, train_and_test(experiment, checkpoint.parent, device,
                                               resume=checkpoint, cache_dir=cache_dir,
                                               command=command)


def results_object(results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """What `--out` holds: one run's metrics, or every seed's with their mean and std."""
    if len(results) == 1:
        return next(iter(results.values()))
    return summarize_seeds(results)
