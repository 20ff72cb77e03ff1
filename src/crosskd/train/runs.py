"""Runs of an experiment: run folders, training then the final test, several seeds."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from crosskd.checkpoint.run_state import BEST_NAME
from crosskd.config import ExperimentConfig
from crosskd.data.retrieval import RetrievalData
from crosskd.diskwrites import reported_write, write_error, write_text_atomically
from crosskd.errors import UserError
from crosskd.inference import load_model
from crosskd.process import ProcessContext
from crosskd.train.assembly import build_training
from crosskd.train.evaluate import evaluate_loaded
from crosskd.train.elastic import claim_run_folder, forget_run_folder
from crosskd.train.history import log_test_metrics
from crosskd.train.report import describe_protocol, format_result, summarize_seeds
from crosskd.train.run_record import LOG_NAME, RECORD_NAME, RunRecord, recorded_run
from crosskd.train.runtime import Runtime
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


def run_folder(save_dir: str | Path, name: str, seed: int, timestamp: str) -> Path:
    """Create and return `<save_dir>/<name>/<timestamp>_seed<seed>` (`save_dir`: the config's
    `trainer.save_dir`, TrainerSpec.save_dir), never a folder that exists: the name is claimed
    by an atomic mkdir (a suffix `-2`, `-3`, ... is added on a clash), so runs started in the
    same second, in parallel, get folders of their own.
    """
    base = Path(save_dir) / name / f"{timestamp}_seed{seed}"
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


def final_test(experiment: ExperimentConfig, run_dir: Path, runtime: Runtime,
               cache_dir: Path | None = None) -> dict[str, Any]:
    """Test the selected (best) model with `eval_settings` merged in, on the training's
    runtime (its device and precision); saved beside the run."""
    evaluation = experiment.evaluation()
    model = load_model(evaluation.model, run_dir / BEST_NAME, runtime.device)
    metrics = evaluate_loaded(model, evaluation, runtime, cache_dir)
    write_text_atomically(run_dir / TEST_METRICS_NAME, json.dumps(metrics, indent=1) + "\n",
                          f"free disk space and test again with crosskd test --resume {run_dir}")
    if experiment.trainer.tensorboard:
        log_test_metrics(run_dir, experiment.raw, metrics)
    _log_test(f"final test of {run_dir}", metrics)
    if "video_level" in metrics:
        _log_test("final test, video level", metrics["video_level"])
    return metrics


def _log_test(what: str, metrics: Mapping[str, Any]) -> None:
    """One log line of a test's t2v metrics and its protocol."""
    t2v = metrics["t2v"]
    log.info("%s: t2v R@1 %.1f, R@5 %.1f, R@10 %.1f, MdR %g (%s)", what, t2v["R1"], t2v["R5"],
             t2v["R10"], t2v["MedR"], describe_protocol(metrics["protocol"]))


def train_and_test(experiment: ExperimentConfig, run_dir: Path, context: ProcessContext,
                   resume: Path | None = None, cache_dir: Path | None = None,
                   command: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """Train one run (or finish a resumed one), then run the final test on its best model;
    `command` (argv, overrides) goes into the run folder's run.json, the log into train.log.
    Under torchrun (the process group joined: crosskd.train.distributed.join_process_group),
    ranks other than 0 train only, write nothing and return None."""
    if not context.writes_files:
        data = RetrievalData.load(experiment.data, cache_dir=cache_dir)
        _train(experiment, run_dir, context, data, resume, None)
        return None
    with recorded_run(run_dir, context, command or {}) as record:
        data = RetrievalData.load(experiment.data, cache_dir=cache_dir)
        runtime = _train(experiment, run_dir, context, data, resume, record)
        return final_test(experiment, run_dir, runtime, data.cache_dir)


def _train(experiment: ExperimentConfig, run_dir: Path, context: ProcessContext,
           data: RetrievalData, resume: Path | None, record: RunRecord | None) -> Runtime:
    """Train one run; its runtime. The model and optimizer are freed on return, before the
    final test."""
    trainer = Trainer(build_training(experiment, context, data), run_dir)
    if resume is not None:
        trainer.resume(resume)
    if record is not None:
        record.begin()
    result = trainer.train()
    log.info("run %s: best epoch %d (%s = %.4f)", run_dir, result.best_epoch,
             experiment.trainer.monitor.key or "epoch", result.monitor_best)
    return trainer.runtime


def train_seeds(experiment: ExperimentConfig, name: str, seeds: Sequence[int],
                context: ProcessContext, cache_dir: Path | None = None,
                command: Mapping[str, Any] | None = None) -> dict[int, dict[str, Any]]:
    """One run per seed (same config otherwise) of the experiment called `name`; the final
    test metrics of each. With several seeds, their summary goes to summary.json and
    summary.md in the experiment folder.

    The features are packed once for all seeds (into `cache_dir`, else a temporary folder).
    Under torchrun rank 0 claims the folders (a restarted job continues its run,
    crosskd.train.elastic) and alone returns metrics; the other ranks return {}.
    """
    for seed in seeds:
        check_seed(seed, "config key seed")
    timestamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    results = {}
    with tempfile.TemporaryDirectory(prefix="crosskd-cache-") as scratch:
        for seed in seeds:
            seeded = experiment.with_seed(seed)
            save_dir = seeded.trainer.save_dir
            run_dir, resume = claim_run_folder(
                lambda: run_folder(save_dir, name, seed, timestamp), Path(save_dir) / name, seed,
                context)
            log.info("training seed %d in %s", seed, run_dir)
            with _writer_guards(run_dir, context):
                metrics = train_and_test(seeded, run_dir, context, resume=resume,
                                         cache_dir=cache_dir or Path(scratch), command=command)
            forget_run_folder(Path(save_dir) / name, seed, context)
            if metrics is not None:
                results[int(seed)] = metrics
    if len(results) > 1:
        write_seed_summary(run_dir.parent, name, results)
    return results


@contextlib.contextmanager
def _writer_guards(run_dir: Path, context: ProcessContext) -> Iterator[None]:
    """The run folder locked and, if the run fails before training, removed again: by the
    process that writes it (rank 0 under torchrun)."""
    if not context.writes_files:
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


def resume_run(checkpoint: Path, experiment: ExperimentConfig, context: ProcessContext,
               cache_dir: Path | None = None, command: Mapping[str, Any] | None = None
               ) -> dict[str, Any] | None:
    """Finish the run `checkpoint` (one of ours) belongs to, in its folder, with `experiment`
    (its stored config with the command's overrides, and always its stored seed: the RNG
    states continue from the checkpoint)."""
    lock = (exclusive_run_folder(checkpoint.parent) if context.writes_files
            else contextlib.nullcontext())
    with lock:
        return train_and_test(experiment, checkpoint.parent, context, resume=checkpoint,
                              cache_dir=cache_dir, command=command)


def results_object(results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """What `--out` holds: one run's metrics, or every seed's with their mean and std."""
    if len(results) == 1:
        return next(iter(results.values()))
    return summarize_seeds(results)
