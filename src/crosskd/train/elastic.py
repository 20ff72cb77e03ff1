"""Which run folder a torchrun job trains in, so that a restarted job continues its run.

Under `torchrun --max-restarts K` a failed worker makes torchrun start every worker again
with the same command line. Rank 0 claims the run folder on the first start and notes its
name in `<experiment folder>/.torchrun-<job id>-seed<seed>` (the job id is torchrun's
rendezvous id: `--rdzv-id`, or a fresh one per `--standalone` launch); a restart
(TORCHELASTIC_RESTART_COUNT > 0) finds the note and resumes from the folder's last
checkpoint. Every rank then learns the folder from rank 0; the note goes once the run is
trained and tested.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Mapping

from crosskd.checkpoint.run_state import LAST_NAME
from crosskd.diskwrites import write_text_atomically
from crosskd.train.distributed import Distributed, broadcast

log = logging.getLogger(__name__)


def _note(experiment_dir: Path, seed: int, environ: Mapping[str, str]) -> Path | None:
    """Where this job notes its run folder (None outside torchrun's elastic agent)."""
    job_id = environ.get("TORCHELASTIC_RUN_ID")
    return experiment_dir / f".torchrun-{job_id}-seed{seed}" if job_id else None


def _restarted(note: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The run folder an earlier start of this job noted, when this is a restart."""
    if note is None or int(environ.get("TORCHELASTIC_RESTART_COUNT", "0")) == 0:
        return None
    if not note.is_file():
        return None
    folder = note.parent / note.read_text(encoding="utf-8").strip()
    return folder if folder.is_dir() else None


def claim_run_folder(claim: Callable[[], Path], experiment_dir: Path, seed: int,
                     job: Distributed | None, environ: Mapping[str, str] = os.environ
                     ) -> tuple[Path, Path | None]:
    """The run folder (made by `claim` unless a restarted job continues one) and the
    checkpoint to resume from (None: start afresh), the same on every rank."""
    if job is None:
        return claim(), None
    chosen: tuple[Path, Path | None] | None = None
    if job.writes_files:
        note = _note(experiment_dir, seed, environ)
        folder = _restarted(note, environ)
        if folder is None:
            folder = claim()
            if note is not None:
                write_text_atomically(note, folder.name + "\n", "free disk space")
            chosen = folder, None
        else:
            last = folder / LAST_NAME
            chosen = folder, last if last.is_file() else None
            log.info("torchrun restarted the job: continuing %s from %s", folder,
                     chosen[1] or "its start")
    return broadcast(chosen, job)


def forget_run_folder(experiment_dir: Path, seed: int, job: Distributed | None,
                      environ: Mapping[str, str] = os.environ) -> None:
    """Remove the job's note of a finished run (rank 0)."""
    note = _note(experiment_dir, seed, environ) if job is not None and job.writes_files else None
    if note is not None:
        note.unlink(missing_ok=True)
