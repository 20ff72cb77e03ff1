"""Our own run checkpoints: everything needed to resume a run exactly, loadable safely.

The file is a `torch.save` of plain containers and tensors only (the config travels as a
JSON string), so `torch.load(weights_only=True)` reads it without importing any class.
Writes go to a temporary file renamed over the target, so a crash mid-write leaves the
previous good checkpoint in place.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from crosskd.checkpoint.refusal import unsafe_checkpoint
from crosskd.diskwrites import reported_write
from crosskd.errors import UserError
from crosskd.signals import signals_deferred
from crosskd.tree import leaves

log = logging.getLogger(__name__)

FORMAT = "crosskd-run-state-v1"
BEST_NAME = "model_best.pth"
LAST_NAME = "checkpoint_last.pth"


def save_run_state(path: str | Path, *, model_state: dict[str, torch.Tensor], epoch: int,
                   config: dict[str, Any], monitor_best: float,
                   optimizer_state: dict[str, Any] | None = None,
                   scheduler_state: dict[str, Any] | None = None,
                   rng_state: dict[str, Any] | None = None,
                   history: list[dict[str, Any]] | None = None, best_epoch: int = 0,
                   position: dict[str, Any] | None = None) -> Path:
    """Atomically write a run checkpoint (model, optimizer, scheduler, epoch, RNG states);
    `position` says where inside the next epoch a run stopped (None: at its start)."""
    payload = {
        "format": FORMAT,
        "arch": "CENet",
        "epoch": int(epoch),
        "state_dict": model_state,
        "optimizer": optimizer_state,
        "lr_scheduler": scheduler_state,
        "monitor_best": float(monitor_best),
        "best_epoch": int(best_epoch),
        "config_json": json.dumps(config),
        "rng_state": rng_state,
        "history_json": json.dumps(history or []),
        "position_json": json.dumps(position),
    }
    path = Path(path)
    kept = ("the previous checkpoint there is intact" if path.is_file()
            else "no partial file was left")
    again = (f"resume with --resume {path.parent}" if (path.parent / LAST_NAME).is_file()
             else "start the run again")
    with reported_write(path, f"{kept} - free disk space and {again}",
                        needed=_tensor_bytes(payload)):
        _write_atomically(path, payload)
    return path


def _tensor_bytes(tree: Any) -> int:
    """Bytes of every tensor in the payload: about the size of the checkpoint file."""
    return sum(tensor.numel() * tensor.element_size() for tensor in leaves(tree))


def _temporaries(folder: Path, name: str) -> list[Path]:
    """The temporary files `_write_atomically` makes for target `name` inside `folder`."""
    return sorted(folder.glob(f".{name}.*.tmp"))


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete half-written checkpoints that a killed process left in a run folder.

    A run folder has one writer at a time, so any temporary file found when a run resumes
    (or before the next save) belongs to a write that never finished.
    """
    stale = [tmp for name in (LAST_NAME, BEST_NAME) for tmp in _temporaries(Path(folder), name)]
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    if stale:
        log.info("removed %d unfinished checkpoint file(s) from %s", len(stale), folder)
    return stale


_FILE_MODE = 0o666


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is put back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_atomically(path: Path, payload: dict[str, Any]) -> None:
    """Save to a temporary file beside `path`, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in _temporaries(path.parent, path.name):
        stale.unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _FILE_MODE & ~_umask())  # readable like the run's other files, not 0600
        with signals_deferred(), os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
            os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_run_state(path: str | Path) -> dict[str, Any]:
    """Read a run checkpoint safely; `config` and `history` come back as Python objects."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # torch's refusal: never relay its advice
        raise unsafe_checkpoint(path, str(err)) from None
    except Exception as err:
        raise UserError(f"checkpoint {path} is not a crosskd run checkpoint "
                        f"({type(err).__name__}: {_first_line(err)}); original "
                        "trained_model.pth files are read by `test.py --resume`") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"checkpoint {path} is not a crosskd run checkpoint (format key missing)")
    payload["config"] = json.loads(payload.pop("config_json"))
    payload["history"] = json.loads(payload.pop("history_json"))
    payload["position"] = json.loads(payload.pop("position_json", "null"))
    return payload


def _first_line(err: BaseException) -> str:
    """The start of a reader's message, without the advice some readers append."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else "no details"


def resolve_resume_path(resume: str | Path, prefer: tuple[str, ...] = (LAST_NAME, BEST_NAME)
                        ) -> Path:
    """A checkpoint file, or the first of `prefer` in a run folder (training resumes the last)."""
    path = Path(resume)
    if path.is_dir():
        for name in prefer:
            if (path / name).is_file():
                return path / name
        raise UserError(f"--resume {path}: the folder holds neither {LAST_NAME} nor {BEST_NAME}")
    if not path.is_file():
        raise UserError(f"--resume {path}: no such checkpoint file or run folder")
    return path
