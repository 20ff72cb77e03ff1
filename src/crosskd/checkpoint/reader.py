"""Model weights (and the stored config) from any checkpoint a user may hand to `test`.

Accepted: our run checkpoints (or their run folder), a bare state_dict file, and the
original implementation's `trained_model.pth` (read by crosskd.checkpoint.original
through an allow-list, never unpickling code).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from crosskd.checkpoint.original import load_original_checkpoint
from crosskd.checkpoint.run_state import BEST_NAME, FORMAT, LAST_NAME, resolve_resume_path
from crosskd.errors import UserError


def _our_checkpoint(path: Path) -> dict[str, Any] | None:
    """The payload when `path` is one of our run checkpoints, else None.

    The file is memory-mapped: tensors that are never used (the optimizer state) are never
    read, and the weights are paged in from the file instead of being copied.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # the original format pickles its config class; weights_only refuses it
        return None
    return payload if isinstance(payload, dict) and payload.get("format") == FORMAT else None


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """`(state_dict, config or None)` of a checkpoint file or run folder (its best model)."""
    path = resolve_resume_path(path, prefer=(BEST_NAME, LAST_NAME))
    ours = _our_checkpoint(path)
    if ours is not None:
        return ours["state_dict"], json.loads(ours["config_json"])
    original = load_original_checkpoint(path)
    return dict(original.state_dict), original.config or None


def stored_config(path: str | Path) -> dict[str, Any]:
    """The config saved inside a checkpoint, for `test` without `--config`."""
    config = read_checkpoint(path)[1]
    if config is None:
        raise UserError(f"checkpoint {path} stores no readable config; pass --config")
    return config
