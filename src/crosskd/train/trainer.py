"""One training run: epochs of minibatch updates, validation, model selection, checkpoints.

A run lives in its own folder (config.json, model_best.pth, checkpoint_last.pth,
metrics.json/csv, tensorboard/). The last checkpoint is written every `trainer.save_period`
epochs (default 1) and after the final one, with every RNG state, so a resumed run ends with
the same weights as an uninterrupted one. The best model holds the weights only.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from crosskd.checkpoint.background import snapshot
from crosskd.checkpoint.original import load_original_state_dict
from crosskd.checkpoint.run_state import (BEST_NAME, LAST_NAME, load_run_state,
                                         remove_stale_temporaries, save_run_state)
from crosskd.config import ConfigError, save_config
from crosskd.config.monitor import tie_keeps_best
from crosskd.errors import UserError
from crosskd.train.assembly import TrainingParts
from crosskd.train.distributed import EvalShards, any_rank
from crosskd.train.evaluate import evaluate
from crosskd.train.graphed_step import portable_state
from crosskd.train.history import EpochLog, flatten_metrics
from crosskd.train.interrupts import (EpochPosition, StopRequests, TrainingInterrupted,
                                      stop_requests)
from crosskd.train.seeds import capture_rng_state, restore_rng_state

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"


class NonFiniteLossError(UserError):
    """Training diverged: the loss became NaN or infinite."""


@dataclass
class TrainResult:
    """Where a finished run lives and how its selected model did on validation."""

    run_dir: Path
    best_epoch: int
    monitor_best: float
    history: list[dict[str, Any]]


class Trainer:
    """Trains the model a config describes; resumable from its last checkpoint."""

    def __init__(self, parts: TrainingParts, run_dir: Path) -> None:
        """Train with `parts` (crosskd.train.assembly.build_training) into `run_dir`."""
        self.run_dir = Path(run_dir)
        self.config = parts.experiment.raw  # what config.json and every checkpoint store
        self.settings = parts.experiment.trainer
        self.context = parts.context
        self.runtime = parts.runtime
        self.train_batches, self.eval_batches = parts.train_batches, parts.eval_batches
        self.sampler, self.data_rng = parts.sampler, parts.data_rng
        self.model, self.optimizer, self.scheduler = parts.model, parts.optimizer, parts.scheduler
        self.task, self.runner, self.writer = parts.task, parts.runner, parts.writer
        self.start_epoch = 1
        self.best = self.settings.monitor.worst
        self.best_epoch = 0
        self.history: list[dict[str, Any]] = []
        self._unsaved_best: dict[str, torch.Tensor] | None = None
        self._position: EpochPosition | None = None  # where a resumed epoch stopped

    def resume(self, checkpoint: Path) -> None:
        """Continue from one of our checkpoints: weights, optimizer, scheduler, RNGs, history."""
        state = load_run_state(checkpoint)
        if state["rng_state"] is None or state["optimizer"] is None:
            raise UserError(f"checkpoint {checkpoint} holds weights only; resume from "
                            f"{LAST_NAME} of the run folder")
        load_original_state_dict(self.model, state["state_dict"], f"checkpoint {checkpoint}")
        self.optimizer.load_state_dict(state["optimizer"])
        self.runner.prepare_optimizer()
        if self.scheduler is not None and state["lr_scheduler"] is not None:
            self.scheduler.load_state_dict(state["lr_scheduler"])
        restore_rng_state(state["rng_state"], self.data_rng)
        remove_stale_temporaries(Path(checkpoint).parent)
        self.start_epoch = state["epoch"] + 1
        self.best = state["monitor_best"]
        self.best_epoch = int(state.get("best_epoch", 0))
        self.history = [row for row in state["history"] if row["epoch"] <= state["epoch"]]
        self._position = EpochPosition.from_checkpoint(state.get("position"))
        inside = (f", batch {self._position.batches_done} of epoch {self._position.epoch}"
                  if self._position else "")
        log.info("resuming %s from epoch %d%s (best %s so far: %.4f)", checkpoint,
                 state["epoch"], inside, self.settings.monitor.key or "epoch", self.best)

    def _train_epoch(self, epoch: int, stop: StopRequests | None = None
                     ) -> tuple[dict[str, float], int]:
        """One pass over the training split; returns the mean of every loss term and the
        number of videos trained on here. On a stop request it saves its position after the
        batch in hand and raises."""
        self.model.train()
        stop = stop or StopRequests()  # none is ever requested
        position, self._position = self._position, None
        if position is None:
            position = EpochPosition(epoch, 0, copy.deepcopy(self.data_rng.bit_generator.state))
        self.data_rng.bit_generator.state = position.generator_state
        draws = self.sampler.epoch(self.data_rng)
        for _ in range(position.batches_done):  # replay the draws trained on before a stop
            next(draws)
        sums = position.sums
        progress = tqdm(draws, total=len(self.sampler), initial=position.batches_done,
                        desc=f"epoch {epoch}/{self.settings.epochs}", leave=False, disable=None)
        videos = 0
        for batch_index, draw in enumerate(progress, start=position.batches_done + 1):
            videos += len(draw.videos)
            if (done := self.runner(batch_index, self.train_batches.batch(draw))) is not None:
                self._tally(sums, epoch, *done, progress)
            if self._stop_agreed(stop):
                self._flush(sums, epoch, progress)
                position.batches_done = batch_index
                raise self._interrupted(stop, epoch - 1, position)
        self._flush(sums, epoch, progress)
        self.runner.end_epoch()
        num_batches = max(1, sums.pop("batches", 0))
        return {key: value / num_batches for key, value in sums.items()}, videos

    def _stop_agreed(self, stop: StopRequests) -> bool:
        """Whether to stop here: a stop was requested (on any rank of a distributed run,
        so that every rank stops after the same batch)."""
        if self.context.job is not None:
            stop.signum = any_rank(stop.signum)
        return stop.requested

    def _flush(self, sums: dict[str, float], epoch: int, progress: tqdm) -> None:
        """Tally the step still in flight, if any."""
        if (done := self.runner.flush()) is not None:
            self._tally(sums, epoch, *done, progress)

    def _interrupted(self, stop: StopRequests, epoch: int,
                     position: EpochPosition | None = None) -> TrainingInterrupted:
        """Save a resumable checkpoint after `epoch` (plus `position` inside the next one)."""
        self._write_best()
        path = self._save(LAST_NAME, epoch, position=position)
        if self.writer is not None:
            self.writer.wait()
        where = (f"epoch {position.epoch}, batch {position.batches_done}" if position
                 else f"epoch {epoch}")
        return TrainingInterrupted(f"{stop.name} received: stopped after {where} and saved "
                                   f"{path}; continue with --resume {self.run_dir}",
                                   stop.signum or 0)

    def _tally(self, sums: dict[str, float], epoch: int, batch_index: int,
               values: dict[str, float], progress: tqdm) -> None:
        """Add one batch's loss terms to `sums`; a non-finite loss stops training (eager steps
        check before their update; graphed steps are read after their update and the next)."""
        loss = values.pop("loss")
        if not math.isfinite(loss):
            raise self._divergence(loss, epoch, batch_index)
        for key, value in {"batches": 1.0, "loss": loss,
                           **{f"loss_{k}": v for k, v in values.items()}}.items():
            sums[key] = sums.get(key, 0.0) + value
        progress.set_postfix(loss=f"{loss:.4f}")

    def _divergence(self, loss: float, epoch: int, batch: int) -> NonFiniteLossError:
        """The error for a NaN/inf loss, naming the checkpoint to go back to if there is one."""
        if self.writer is not None:
            self.writer.wait()
        last = self.run_dir / LAST_NAME
        if last.exists():
            saved = f"The last good checkpoint is {last}"
        else:
            saved = (f"No checkpoint was written yet (one is written every "
                     f"trainer.save_period = {self.settings.save_period} epoch(s))")
        return NonFiniteLossError(f"the training loss became {loss} at epoch {epoch}, batch "
                                  f"{batch}; stopped. {saved}. Lower optimizer.args.lr or "
                                  "check the features")

    def _create_run_dir(self) -> None:
        """Create the run folder and write its config, refusing an unwritable place up front."""
        if not self.context.writes_files:
            return
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.run_dir / CONFIG_NAME)
        except OSError as err:
            reason = err.strerror or str(err)
            if isinstance(err, (FileExistsError, NotADirectoryError)):
                reason = "part of the path is a file, not a folder"
            raise UserError(f"cannot create the run folder {self.run_dir} ({reason}); set "
                            "trainer.save_dir to a folder you can write") from None

    def _save(self, name: str, epoch: int, resumable: bool = True,
              model_state: dict[str, torch.Tensor] | None = None,
              position: EpochPosition | None = None) -> Path:
        """Write a checkpoint (in the background with `trainer.background_checkpoints`);
        `resumable=False` keeps the weights only (a third of the size). Only rank 0 of a
        distributed run writes."""
        if not self.context.writes_files:
            return self.run_dir / name
        state = {
            "model_state": model_state or self.model.state_dict(), "epoch": epoch,
            "config": self.config, "monitor_best": self.best, "best_epoch": self.best_epoch,
            "optimizer_state": portable_state(self.optimizer) if resumable else None,
            "scheduler_state": (self.scheduler.state_dict() if self.scheduler and resumable
                                else None),
            "rng_state": capture_rng_state(self.data_rng) if resumable else None,
            "history": list(self.history),
            "position": dataclasses.asdict(position) if position else None}
        path = self.run_dir / name
        if self.writer is None:
            return save_run_state(path, **state)
        copied = snapshot(state)
        self.writer.submit(lambda: save_run_state(path, **copied.get()))
        return path

    def _select(self, epoch: int, row: dict[str, Any]) -> bool:
        """Update the best epoch from this epoch's log row; True when it improved."""
        settings = self.settings
        for name, monitor in (("monitor", settings.monitor),
                              ("monitor_tie_break", settings.tie_break)):
            if monitor.mode != "off" and monitor.key not in row:
                raise ConfigError(f"trainer.{name} names {monitor.key!r}, which the trainer "
                                  f"does not log; logged keys: {', '.join(sorted(row))}")
        monitor = settings.monitor
        value = float(row[monitor.key]) if monitor.mode != "off" else float(epoch)
        if not monitor.improved(value, self.best) or (
                self.best_epoch and value == self.best
                and tie_keeps_best(settings.tie_break, row, self._logged(self.best_epoch))):
            return False
        self.best, self.best_epoch = value, epoch
        return True

    def _logged(self, epoch: int) -> dict[str, Any]:
        """The log row of an earlier epoch."""
        return next(row for row in self.history if row["epoch"] == epoch)

    def _keep_best(self, epoch: int) -> None:
        """Write the new best model now, or (on a GPU, with `save_period` > 1) copy its weights
        on the device until the next save point, so fast epochs do not wait for the disk."""
        if self.context.device.type == "cpu" or self.settings.save_period == 1:
            self._save(BEST_NAME, epoch, resumable=False)  # runs resume from the last
            return
        self._unsaved_best = {key: value.detach().clone()
                              for key, value in self.model.state_dict().items()}

    def _write_best(self) -> None:
        """Write a best model kept on the device (before the last checkpoint that follows it)."""
        if self._unsaved_best is not None:
            self._save(BEST_NAME, self.best_epoch, resumable=False,
                       model_state=self._unsaved_best)
            self._unsaved_best = None

    def _epoch(self, epoch: int, stop: StopRequests, epoch_log: EpochLog) -> None:
        """Train one epoch, validate it when due, select, log and save."""
        started = time.perf_counter()
        losses, videos = self._train_epoch(epoch, stop)
        trained = time.perf_counter() - started
        row: dict[str, Any] = {"epoch": epoch, **losses,
                               "lr": float(self.optimizer.param_groups[0]["lr"])}
        validate = epoch % self.settings.val_freq == 0 or epoch == self.settings.epochs
        if validate:
            job = self.context.job
            metrics = evaluate(self.model, self.eval_batches, self.context.device,
                               precision=self.runtime.precision,
                               shards=EvalShards(job) if job is not None else None)
            row.update(flatten_metrics("val", metrics))
        if self.scheduler is not None:
            with warnings.catch_warnings():
                if videos == 0:  # resumed after the epoch's last batch: its steps ran before
                    warnings.filterwarnings("ignore", message=r"Detected call of .lr_scheduler")
                self.scheduler.step()
        improved = validate and self._select(epoch, row)
        self.history.append(row)
        epoch_log.append(row, {"train_seconds": round(trained, 3),
                               "videos_per_second": round(videos / max(trained, 1e-9), 1),
                               "epoch_seconds": round(time.perf_counter() - started, 3)})
        log.info("epoch %d: %s", epoch, _summary(row, self.settings.monitor.key))
        if improved:
            self._keep_best(epoch)
        if self._stop_agreed(stop):
            raise self._interrupted(stop, epoch)
        if epoch % self.settings.save_period == 0 or epoch == self.settings.epochs:
            self._write_best()
            self._save(LAST_NAME, epoch)

    def train(self) -> TrainResult:
        """Run the remaining epochs, writing logs and checkpoints into the run folder.

        SIGINT or SIGTERM stops at the next batch boundary with a resumable checkpoint
        (crosskd.train.interrupts)."""
        self._create_run_dir()
        epoch_log = EpochLog(self.run_dir, self.history, tensorboard=self.settings.tensorboard,
                             config=self.config, writes=self.context.writes_files)
        try:
            with stop_requests() as stop:
                for epoch in range(self.start_epoch, self.settings.epochs + 1):
                    self._epoch(epoch, stop, epoch_log)
        finally:
            self._write_best()  # also when stopped early: the best epoch so far was good
            epoch_log.close()
            self.runner.end_epoch()
            if self.writer is not None:
                self.writer.wait()
        if self.best_epoch == 0:
            raise UserError(f"no epoch was validated in {self.run_dir}; set trainer.epochs >= 1")
        return TrainResult(self.run_dir, self.best_epoch, self.best, self.history)


def _summary(row: dict[str, Any], monitor_key: str) -> str:
    parts = [f"loss {row['loss']:.5f}"]
    for key in ("val_t2v_metrics_R1", "val_t2v_metrics_R5", "val_t2v_metrics_R10",
                "val_video_level_t2v_metrics_R1", monitor_key):
        if key in row:
            parts.append(f"{key.removeprefix('val_')} {row[key]:.2f}")
    return ", ".join(dict.fromkeys(parts))
