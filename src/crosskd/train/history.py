"""Per-epoch metrics of a run, written to JSON, CSV and TensorBoard as training goes."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path
from typing import Any, Mapping

from torch.utils.tensorboard import SummaryWriter

from crosskd.diskwrites import write_text_atomically

JSON_NAME = "metrics.json"
CSV_NAME = "metrics.csv"
TENSORBOARD_DIR = "tensorboard"


class EpochLog:
    """Collects one row per epoch; rewrites metrics.json/csv so a crash loses nothing logged."""

    def __init__(self, run_dir: Path, rows: list[dict[str, Any]] | None = None,
                 tensorboard: bool = True, config: Mapping[str, Any] | None = None,
                 writes: bool = True) -> None:
        """`config` goes into TensorBoard as text when the run starts (not on a resume);
        `writes=False` (ranks other than 0 of a distributed run) keeps the rows only."""
        self.run_dir = run_dir
        self.rows: list[dict[str, Any]] = list(rows or [])
        self.writes = writes
        self.writer = (SummaryWriter(str(run_dir / TENSORBOARD_DIR)) if tensorboard and writes
                       else None)
        self.timings = _timings_in(run_dir / CSV_NAME, {row["epoch"] for row in self.rows})
        if self.writer is not None and config is not None and not self.rows:
            self.writer.add_text("config", _as_code(config))

    def append(self, row: dict[str, Any], timing: Mapping[str, float] | None = None) -> None:
        """Record one epoch's row (`epoch` plus scalar metrics) everywhere, and its `timing`
        (seconds, videos/s) in metrics.csv only: metrics.json and the checkpoints' history
        hold what a resumed run reproduces exactly."""
        self.rows.append(row)
        if timing:
            self.timings[row["epoch"]] = dict(timing)
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.writer.add_scalar(_tensorboard_tag(key), value, row["epoch"])
            self.writer.flush()
        self._write_files()

    def _write_files(self) -> None:
        """Replace both files atomically: a full disk leaves the previous epoch's files."""
        if not self.writes:
            return
        fix = ("the logs of the previous epochs there are intact - free disk space and resume "
               f"with --resume {self.run_dir}")
        write_text_atomically(self.run_dir / JSON_NAME, json.dumps(self.rows, indent=1) + "\n",
                              fix)
        rows = [{**row, **self.timings.get(row["epoch"], {})} for row in self.rows]
        columns = list(dict.fromkeys(key for row in rows for key in row))
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomically(self.run_dir / CSV_NAME, table.getvalue(), fix)

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        if self.writer is not None:
            self.writer.close()


TIMING_COLUMNS = ("train_seconds", "videos_per_second", "epoch_seconds")


def _timings_in(path: Path, epochs: set[int]) -> dict[int, dict[str, float]]:
    """The timing columns of `epochs` in an existing metrics.csv (a resumed run keeps them)."""
    found: dict[int, dict[str, float]] = {}
    if not epochs or not path.is_file():
        return found
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                epoch = int(row["epoch"])
                if epoch in epochs:
                    found[epoch] = {key: float(row[key]) for key in TIMING_COLUMNS
                                    if row.get(key)}
    except (OSError, ValueError, KeyError, csv.Error):
        return {}  # a damaged log only loses its timings
    return found


def flatten_metrics(prefix: str, metrics: Mapping[str, Any]) -> dict[str, float]:
    """`{"t2v": {"R1": ..}}` -> `{"<prefix>_t2v_metrics_R1": ..}`, the original's log keys; a
    segmented split's video-level metrics as `<prefix>_video_level_t2v_metrics_R1`."""
    flat = {f"{prefix}_{direction}_metrics_{key}": value
            for direction in ("t2v", "v2t") for key, value in metrics[direction].items()}
    if "video_level" in metrics:
        flat.update(flatten_metrics(f"{prefix}_video_level", metrics["video_level"]))
    return flat


def _tensorboard_tag(key: str) -> str:
    """Group scalars: `val_t2v_metrics_R1` -> `val/t2v_metrics_R1`, `loss` -> `train/loss`."""
    prefix, _, rest = key.partition("_")
    if prefix in ("val", "test") and rest:
        return f"{prefix}/{rest}"
    return f"train/{key}"


#: config sections whose scalar values TensorBoard's hyper-parameter table shows.
HPARAM_SECTIONS = ("seed", "optimizer", "lr_scheduler", "loss", "ranking_loss", "ranking_params",
                   "distil_loss", "experts.text_feat", "experts.ce_shared_dim",
                   "data_loader.args.batch_size", "trainer.epochs", "trainer.amp")


def log_test_metrics(run_dir: Path, config: Mapping[str, Any], metrics: Mapping[str, Any]
                     ) -> None:
    """The final test metrics, with the hyper-parameters they came from, into TensorBoard."""
    flat = {_tensorboard_tag(key): float(value)
            for key, value in flatten_metrics("test", metrics).items()}
    with contextlib.closing(SummaryWriter(str(run_dir / TENSORBOARD_DIR))) as writer:
        for tag, value in flat.items():
            writer.add_scalar(tag, value)
        writer.add_hparams(hyperparameters(config), flat, run_name="hparams")


def hyperparameters(config: Mapping[str, Any]) -> dict[str, Any]:
    """The scalar settings under HPARAM_SECTIONS, by dotted key."""
    found: dict[str, Any] = {}

    def visit(prefix: str, node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                visit(f"{prefix}.{key}", value)
        elif isinstance(node, (bool, int, float, str)):
            found[prefix] = node

    for section in HPARAM_SECTIONS:
        node: Any = config
        for part in section.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is not None:
            visit(section, node)
    return found


def _as_code(config: Mapping[str, Any]) -> str:
    """A config as a Markdown code block (TensorBoard renders text as Markdown)."""
    return "```json\n" + json.dumps(config, indent=1) + "\n```"
