"""What a run folder says about the run: `train.log` (every log line) and `run.json` (how,
where and with what it ran), so a result can be traced back without the terminal it ran in."""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch

import crosskd
from crosskd.diskwrites import write_text_atomically
from crosskd.errors import UserError
from crosskd.process import ProcessContext

LOG_NAME = "train.log"
RECORD_NAME = "run.json"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _LogFile(logging.FileHandler):
    """train.log; on a full or read-only disk it stops writing instead of printing logging's
    traceback for every record (the run's own writes then report the disk in one line)."""

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            self.setLevel(logging.CRITICAL + 1)  # silent from now on
            return
        super().handleError(record)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # its last buffered lines did not fit either
            super().close()


class _Held(logging.Handler):
    """Keeps log records until the run begins (then they go to train.log, else nowhere)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class RunRecord:
    """train.log and run.json of one start of a run, written once `begin` is called: a start
    refused before training (a resume that does not fit, say) leaves the folder untouched."""

    def __init__(self, run_dir: Path, context: ProcessContext, command: Mapping[str, Any]
                 ) -> None:
        self.path = run_dir / RECORD_NAME
        self.log_path = run_dir / LOG_NAME
        self.entry = invocation(context, command)
        self.runs: list[dict[str, Any]] = []
        self.handler: logging.Handler = _Held()
        self.begun = False

    def begin(self) -> None:
        """Training starts: write run.json, and the log so far plus what follows to train.log."""
        if self.path.is_file():
            with contextlib.suppress(ValueError, OSError, AttributeError):
                self.runs = list(json.loads(self.path.read_text(encoding="utf-8"))
                                 .get("invocations", []))
        self.runs.append(self.entry)
        self._write()
        held = self.handler
        self.handler = _LogFile(self.log_path, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter(LOG_FORMAT))
        self.handler.setLevel(logging.INFO)
        for record in getattr(held, "records", []):
            self.handler.handle(record)
        _swap_handler(held, self.handler)
        self.begun = True

    def end(self, outcome: str) -> None:
        """Close the entry with its end time and how the start ended."""
        if self.begun:
            self.entry.update(outcome=outcome, ended=_now())
            with contextlib.suppress(UserError):  # a full disk: the run's own error comes first
                self._write()

    def _write(self) -> None:
        write_text_atomically(self.path, json.dumps({"invocations": self.runs}, indent=1)
                              + "\n", "free disk space and run again")


def _swap_handler(old: logging.Handler, new: logging.Handler) -> None:
    root = logging.getLogger()
    root.removeHandler(old)
    root.addHandler(new)


def source_commit() -> dict[str, Any] | None:
    """The git commit crosskd runs from (and whether it has changes), when it is a checkout."""
    checkout = Path(crosskd.__file__).resolve().parents[2]
    if not (checkout / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], text=True,
                                capture_output=True, timeout=10, check=True).stdout.strip()
        changes = subprocess.run(["git", "-C", str(checkout), "status", "--porcelain",
                                  "--untracked-files=no"], text=True, capture_output=True,
                                 timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "uncommitted_changes": bool(changes)}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def invocation(context: ProcessContext, command: Mapping[str, Any]) -> dict[str, Any]:
    """One start of a run: `command` (argv, overrides), versions, source commit, device and
    process count."""
    device = context.device
    return {
        **command,
        "started": _now(), "ended": None, "outcome": "running",
        "crosskd": crosskd.__version__, "source": source_commit(),
        "python": platform.python_version(), "torch": torch.__version__,
        "numpy": np.__version__, "platform": platform.platform(),
        "device": str(device), "device_name": _device_name(device),
        "threads": torch.get_num_threads(), "processes": context.processes,
    }


@contextlib.contextmanager
def recorded_run(run_dir: Path, context: ProcessContext,
                 command: Mapping[str, Any]) -> Iterator[RunRecord]:
    """Log the block (INFO and above, whatever the console shows) into train.log and record it
    in run.json, appending to both on a resume; the caller calls `begin()` when training
    starts, and nothing is written before that."""
    record = RunRecord(run_dir, context, command)
    ours = logging.getLogger("crosskd")
    level = ours.level
    if ours.getEffectiveLevel() > logging.INFO:
        ours.setLevel(logging.INFO)
    logging.getLogger().addHandler(record.handler)
    try:
        yield record
        record.end("finished")
    except BaseException as err:
        record.end(f"stopped: {type(err).__name__}: {err}"[:500])
        raise
    finally:
        logging.getLogger().removeHandler(record.handler)
        record.handler.close()
        ours.setLevel(level)
