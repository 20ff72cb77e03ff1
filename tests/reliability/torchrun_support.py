"""Helpers of the distributed tests: a tiny dataset's configs and torchrun launches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from reliability_support import tiny_config

#: the variants the equivalence test trains: CE+ with caption KD, plus TeachText, and plain.
OBJECTIVES = {"cecap": {}, "ttcap": {"distil_loss": True}, "baseline": {"ranking_loss": False}}


def objective_config(data_dir: Path, save_dir: Path, objective: str, epochs: int
                     ) -> dict[str, Any]:
    """The tiny CE+ config (15 training videos: batches of 8 and 7, the 7 split unevenly
    over two ranks) with one of `OBJECTIVES`."""
    return {**tiny_config(data_dir, save_dir, epochs), **OBJECTIVES[objective]}


def write_config(folder: Path, name: str, config: dict[str, Any]) -> Path:
    """`config` as `<folder>/<name>.json` (the run folders go under <save_dir>/<name>)."""
    path = folder / f"{name}.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def torchrun_command(processes: int, script: Path, arguments: Sequence[str],
                     restarts: int = 0) -> list[str]:
    """`torchrun --standalone --nproc_per_node N [--max-restarts K] script arguments`."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={processes}", f"--max-restarts={restarts}", str(script),
            *arguments]


def quiet_environment() -> dict[str, str]:
    """One thread per worker (two share this machine's cores), the checkout's sources."""
    source = str(Path(__file__).resolve().parents[2] / "src")
    path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}


def run_torchrun(command: list[str], log: Path, timeout: float = 240) -> None:
    """Run a torchrun command to its end, failing with its log's tail if it fails."""
    with open(log, "wb") as out:
        status = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT,
                                env=quiet_environment(), timeout=timeout).returncode
    assert status == 0, log.read_text(errors="replace")[-4000:]
