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
from pathlib import Path
from typing import Callable

from crosskd.checkpoint.run_state import LAST_NAME
from crosskd.diskwrites import write_text_atomically
from crosskd.process import ProcessContext, TorchrunJob
from crosskd.train.distributed import broadcast

log = logging.getLogger(__name__)


def _note(experiment_dir: Path, seed: int, job: TorchrunJob) -> Path | None:
    """Where this job notes its run folder (None outside torchrun's elastic agent)."""
    return experiment_dir / f".torchrun-{job.run_id}-seed{seed}" if job.run_id else None


def _restarted(note: Path | None, job: TorchrunJob) -> Path | None:
    """The run folder an earlier start of this job noted, when this is a restart."""
    if note is None or job.restarts == 0 or not note.is_file():
        return None
    folder = note.parent / note.read_text(encoding="utf-8").strip()
    return folder if folder.is_dir() else None


def claim_run_folder(claim: Callable[[], Path], experiment_dir: Path, seed: int,
                     context: ProcessContext) -> tuple[Path, Path | None]:
    """The run folder (made by `claim` unless a restarted job continues one) and the
    checkpoint to resume from (None: start afresh), the same on every rank."""
    job = context.job
    if job is None:
        return claim(), None
    chosen: tuple[Path, Path | None] | None = None
    if context.writes_files:
        note = _note(experiment_dir, seed, job)
        folder = _restarted(note, job)
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


def forget_run_folder(experiment_dir: Path, seed: int, context: ProcessContext) -> None:
    """Remove the job's note of a finished run (rank 0)."""
    if context.job is None or not context.writes_files:
        return
    note = _note(experiment_dir, seed, context.job)
    if note is not None:
        note.unlink(missing_ok=True)
