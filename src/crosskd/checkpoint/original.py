"""Read and write checkpoints in the original CE/CrossKD `trained_model.pth` format.

The original file is a `torch.save` of {arch, epoch, state_dict, optimizer, monitor_best,
config}, where `config` is a pickled object of the original's `parse_config.ConfigParser`.
We read it with torch's weights-only unpickler and an explicit allow-list: the config
object becomes a stub that only keeps its attribute dict (its `_config` is returned as plain
data), paths become strings, numpy scalars become Python numbers; any other class or
function named by the file is refused before it is imported or called. Both the zip format
(torch >= 1.6) and the legacy format of the published 2020 checkpoints are supported.

Naming: CENet keeps the original module names, so our state_dict keys, shapes and order are
the original's; converting in either direction is the identity on keys. Exported files hold
the config as a plain dict, so the original code and ours both read them.
"""

from __future__ import annotations

import argparse
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

import torch
from torch import nn

from crosskd.checkpoint import legacy
from crosskd.checkpoint.refusal import unsafe_checkpoint
from crosskd.diskwrites import atomic_path, reported_write
from crosskd.errors import UserError
from crosskd.safe_pickle import CONTAINER_GLOBALS, NUMPY_GLOBALS, UnsafePickleError


class CheckpointError(UserError):
    """A checkpoint that cannot be read or does not fit the model; the message says why."""


class OriginalConfigState:
    """Stand-in for the original's ConfigParser: keeps the pickled attribute dict, runs nothing."""

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {}


def _posix_path_as_str(*parts: str) -> str:
    """Stand-in for `pathlib.PosixPath(*parts)`: the path as a string, on any platform."""
    return str(PurePosixPath(*parts))


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """Everything an original checkpoint may name besides tensors and storages."""
    return {("parse_config", "ConfigParser"): OriginalConfigState,
            ("argparse", "Namespace"): argparse.Namespace,
            ("pathlib", "PosixPath"): _posix_path_as_str,
            **NUMPY_GLOBALS, **CONTAINER_GLOBALS}


@dataclass
class OriginalCheckpoint:
    """The contents of an original `trained_model.pth`, as plain data."""

    state_dict: "OrderedDict[str, torch.Tensor]"
    config: dict[str, Any]
    epoch: int | None
    monitor_best: float | None
    arch: str | None
    optimizer: dict[str, Any] | None = None


def _torch_load(path: Path) -> Any:
    """torch.load restricted to tensors, plain containers and the allow-list.

    Both formats are memory-mapped (the legacy one by crosskd.checkpoint.legacy): the
    optimizer state is never read, and evaluation can unmap the weights after use
    (crosskd.checkpoint.paging).
    """
    allowed = _allowed_globals()
    try:
        if legacy.is_legacy_file(path):
            return legacy.load_legacy(path, allowed)
        with torch.serialization.safe_globals(
                [(obj, f"{module}.{name}") for (module, name), obj in allowed.items()]):
            return torch.load(path, map_location="cpu", weights_only=True,
                              mmap=zipfile.is_zipfile(path))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except (pickle.UnpicklingError, UnsafePickleError) as err:  # torch's refusal, or ours
        raise unsafe_checkpoint(path, str(err)) from None
    except Exception as err:  # a damaged file makes torch's readers fail in many ways
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint "
                              f"({type(err).__name__}: {err}); download it again or check "
                              "the path") from None


def _plain(value: Any) -> Any:
    """Convert nested OrderedDicts / Namespaces / numpy scalars into JSON-like data."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, argparse.Namespace):
        return _plain(vars(value))
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, torch.Tensor):
        return value.item()
    return value


def _config_of(raw: Any) -> dict[str, Any]:
    """The experiment config dict stored in a checkpoint (ConfigParser object or plain dict)."""
    if isinstance(raw, OriginalConfigState):
        state = raw.state
        raw = state.get("_config", state.get("config", {}))
    return _plain(raw) if isinstance(raw, Mapping) else {}


def _number(payload: Mapping[str, Any], key: str, kind: type, path: Path) -> Any:
    """An optional numeric entry of the checkpoint dict, refusing values of another kind."""
    value = payload.get(key)
    if value is None:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise CheckpointError(f"{path}: entry {key!r} should be a number, found "
                              f"{type(value).__name__}; the file is damaged") from None


def load_original_checkpoint(path: str | Path) -> OriginalCheckpoint:
    """Read an original (or exported) `trained_model.pth` without unpickling arbitrary code."""
    path = Path(path)
    payload = _torch_load(path)
    if isinstance(payload, Mapping) and "state_dict" not in payload and all(
            isinstance(v, torch.Tensor) for v in payload.values()):
        payload = {"state_dict": payload}
    if not isinstance(payload, Mapping) or not isinstance(payload.get("state_dict"), Mapping):
        raise CheckpointError(f"{path}: expected a dict with a 'state_dict' entry, as "
                              "trained_model.pth files hold")
    return OriginalCheckpoint(
        state_dict=OrderedDict(payload["state_dict"]),
        config=_config_of(payload.get("config")),
        epoch=_number(payload, "epoch", int, path),
        monitor_best=_number(payload, "monitor_best", float, path),
        arch=payload.get("arch"),
        optimizer=payload.get("optimizer"),
    )


def original_state_dict(model: nn.Module) -> "OrderedDict[str, torch.Tensor]":
    """The model's weights under the original's key names (identical to ours), on the CPU."""
    return OrderedDict((key, value.detach().cpu().clone())
                       for key, value in model.state_dict().items())


def load_original_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                             source: str = "checkpoint") -> None:
    """Load original-named weights into `model`, explaining any key or shape mismatch."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    mismatched = [f"{key} {tuple(state_dict[key].shape)} vs {tuple(value.shape)}"
                  for key, value in expected.items()
                  if key in state_dict and state_dict[key].shape != value.shape]
    if missing or unexpected or mismatched:
        details = "; ".join(filter(None, [
            f"missing {missing[:5]}" if missing else "",
            f"unexpected {unexpected[:5]}" if unexpected else "",
            f"shape mismatch {mismatched[:5]}" if mismatched else ""]))
        raise CheckpointError(f"{source} does not fit the model the config builds ({details}); "
                              "use the config the checkpoint was trained with")
    model.load_state_dict(state_dict)


def save_original_checkpoint(path: str | Path, model: nn.Module, config: Mapping[str, Any],
                             epoch: int = 0, monitor_best: float | None = None,
                             optimizer: Mapping[str, Any] | None = None) -> Path:
    """Write `model` as a `trained_model.pth` in the original layout (config as a plain dict)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "arch": type(model).__name__,
        "epoch": int(epoch),
        "state_dict": original_state_dict(model),
        "monitor_best": monitor_best,
        "config": _plain(config),
    }
    if optimizer is not None:
        payload["optimizer"] = dict(optimizer)
    with reported_write(path, "no partial file was left; free disk space or choose another "
                        "folder"), atomic_path(path) as tmp:
        torch.save(payload, str(tmp))  # a path: torch writes it without Python callbacks
    return path
