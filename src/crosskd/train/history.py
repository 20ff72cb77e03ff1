"""Per-epoch metrics of a run, written to JSON, CSV and TensorBoard as training goes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from crosskd.diskwrites import write_text_atomically

JSON_NAME = "metrics.json"
CSV_NAME = "metrics.csv"
TENSORBOARD_DIR = "tensorboard"


class EpochLog:
    """Collects one row per epoch; rewrites metrics.json/csv so a crash loses nothing logged."""

    def __init__(self, run_dir: Path, rows: list[dict[str, Any]] | None = None,
                 tensorboard: bool = True) -> None:
        self.run_dir = run_dir
        self.rows: list[dict[str, Any]] = list(rows or [])
        self.writer = SummaryWriter(str(run_dir / TENSORBOARD_DIR)) if tensorboard else None

    def append(self, row: dict[str, Any]) -> None:
        """Record one epoch's row (`epoch` plus scalar metrics) everywhere."""
        self.rows.append(row)
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.writer.add_scalar(_tensorboard_tag(key), value, row["epoch"])
            self.writer.flush()
        self._write_files()

    def _write_files(self) -> None:
        """Replace both files atomically: a full disk leaves the previous epoch's files."""
        fix = ("the logs of the previous epochs there are intact - free disk space and resume "
               f"with --resume {self.run_dir}")
        write_text_atomically(self.run_dir / JSON_NAME, json.dumps(self.rows, indent=1) + "\n",
                              fix)
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomically(self.run_dir / CSV_NAME, table.getvalue(), fix)

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        if self.writer is not None:
            self.writer.close()


def _tensorboard_tag(key: str) -> str:
    """Group scalars: `val_t2v_metrics_R1` -> `val/t2v_metrics_R1`, `loss` -> `train/loss`."""
    prefix, _, rest = key.partition("_")
    if prefix in ("val", "test") and rest:
        return f"{prefix}/{rest}"
    return f"train/{key}"
