"""Memory-mapped reading of torch's legacy (non-zip) checkpoint format, through an allow-list.

torch.load reads every storage of a legacy file into memory and cannot memory-map one, so an
original MSRVTT CE+ `trained_model.pth` in that format (the published 2020 checkpoints) took
its whole 3.2 GB, optimizer state included, before evaluation began. The format is five
pickles (magic number, protocol version, system information, the object, the keys of its
storages in file order) followed by each storage's bytes, after an 8-byte element count.
Here the object is unpickled by crosskd.safe_pickle's restricted unpickler (the caller's
allow-list plus torch's tensor rebuild functions and storage types) and each storage is a
copy-on-write memory map of its bytes: pages are read when used, the optimizer state never,
and evaluation can unmap weights after use (crosskd.checkpoint.paging).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from crosskd.safe_pickle import (CORRUPTION_ERRORS, AllowList, CorruptPickleError,
                                 RestrictedUnpickler, UnsafePickleError, restricted_load)

#: the first pickle of every legacy torch.save file, and the second.
MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
#: torch's legacy storage classes, by the name a pickle gives them.
STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32,
    "HalfStorage": torch.float16, "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64, "IntStorage": torch.int32, "ShortStorage": torch.int16,
    "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


@dataclass(frozen=True)
class _StorageType:
    """What `torch.FloatStorage` and its kin stand for in a pickle: an element type."""

    dtype: torch.dtype


def _rebuild_tensor(storage: torch.Tensor | None, offset: int, size: tuple, stride: tuple,
                    requires_grad: bool = False, *hooks: Any) -> torch.Tensor | None:
    """Stand-in for torch._utils._rebuild_tensor_v2: a view of the mapped storage (None in
    the first pass, when storages are not mapped yet)."""
    if storage is None:
        return None
    tensor = torch.as_strided(storage, size, stride, storage.storage_offset() + offset)
    return tensor.requires_grad_() if requires_grad else tensor


def _rebuild_parameter(data: torch.Tensor | None, requires_grad: bool,
                       *hooks: Any) -> torch.Tensor | None:
    """Stand-in for torch._utils._rebuild_parameter: a state dict needs the data only."""
    return data


def tensor_globals() -> dict[tuple[str, str], Any]:
    """What a legacy file names besides the caller's allow-list: tensor rebuilds, storages."""
    allowed: dict[tuple[str, str], Any] = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }
    for name, dtype in STORAGE_DTYPES.items():
        allowed[("torch", name)] = _StorageType(dtype)
    return allowed


class _ObjectUnpickler(RestrictedUnpickler):
    """Unpickles the object pickle; storages come from `mapped` (None: record them only)."""

    def __init__(self, file: IO[bytes], allowed: AllowList, what: str,
                 mapped: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__(file, allowed, what)
        self.mapped = mapped
        self.storages: dict[str, tuple[torch.dtype, int]] = {}

    def persistent_load(self, pid: Any) -> torch.Tensor | None:
        """The storage named by ('storage', type, key, location, numel, None). Storage views
        (a non-None last entry) come only from torch versions before 1.0 and are refused."""
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
                and isinstance(pid[4], int) and pid[4] >= 0 and pid[5] is None):
            raise UnsafePickleError(f"{self._what}: unexpected persistent id {pid!r} (only "
                                    "whole tensor storages are accepted)")
        _, kind, key, _, numel, _ = pid
        if self.storages.setdefault(key, (kind.dtype, numel)) != (kind.dtype, numel):
            raise CorruptPickleError(f"{self._what}: storage {key} is declared twice "
                                     "differently; the file is corrupt")
        return None if self.mapped is None else self.mapped[key]


def is_legacy_file(path: Path) -> bool:
    """True when the file starts with the legacy format's magic number."""
    try:
        with open(path, "rb") as handle:
            return restricted_load(handle, {}, str(path)) == MAGIC_NUMBER
    except Exception:  # unreadable, or not a pickle of a plain number
        return False


def load_legacy(path: Path, allowed: AllowList) -> Any:
    """The object a legacy torch.save wrote to `path`, its tensors mapped from the file."""
    what = str(path)
    allowed = {**allowed, **tensor_globals()}
    with open(path, "rb") as handle:
        _check_header(handle, what)
        object_start = handle.tell()
        recorder = _ObjectUnpickler(handle, allowed, what)
        _guarded(recorder.load, what)
        keys = restricted_load(handle, {}, what)
        size = os.fstat(handle.fileno()).st_size
        offsets = _data_offsets(handle, keys, recorder.storages, size, what)
        mapped = {key: _map_storage(path, offsets[key], *recorder.storages[key])
                  for key in keys}
        handle.seek(object_start)
        return _guarded(_ObjectUnpickler(handle, allowed, what, mapped).load, what)


def _check_header(handle: IO[bytes], what: str) -> None:
    """Read the magic number, protocol version and system information; refuse others."""
    if restricted_load(handle, {}, what) != MAGIC_NUMBER:
        raise CorruptPickleError(f"{what}: not a torch.save file (no magic number)")
    if restricted_load(handle, {}, what) != PROTOCOL_VERSION:
        raise CorruptPickleError(f"{what}: unsupported legacy torch.save protocol version")
    info = restricted_load(handle, {}, what)
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise CorruptPickleError(f"{what}: only little-endian legacy checkpoints are supported")


def _guarded(load: Any, what: str) -> Any:
    """Run an unpickler's load, turning torch's errors on forged tensor shapes into ours."""
    try:
        return load()
    except (UnsafePickleError, CorruptPickleError):
        raise
    except (*CORRUPTION_ERRORS, RuntimeError) as err:  # RuntimeError: torch's as_strided
        raise CorruptPickleError(f"{what}: cannot read the checkpoint ({type(err).__name__}: "
                                 f"{err}); the file is truncated or corrupt") from None


def _data_offsets(handle: IO[bytes], keys: Any, storages: dict[str, tuple[torch.dtype, int]],
                  file_size: int, what: str) -> dict[str, int]:
    """Where each storage's bytes start, checking every element count against the object."""
    if not (isinstance(keys, list) and all(isinstance(key, str) for key in keys)
            and len(set(keys)) == len(keys) and set(keys) == set(storages)):
        raise CorruptPickleError(f"{what}: the storage list does not match the tensors")
    offsets, position = {}, handle.tell()
    for key in keys:
        dtype, numel = storages[key]
        header = os.pread(handle.fileno(), 8, position)
        if len(header) != 8 or struct.unpack("<q", header)[0] != numel:
            raise CorruptPickleError(f"{what}: storage {key} is truncated or corrupt")
        offsets[key] = position + 8
        position += 8 + numel * dtype.itemsize
    if position > file_size:
        raise CorruptPickleError(f"{what}: the file is truncated ({file_size} of {position} "
                                 "bytes)")
    return offsets


def _map_storage(path: Path, offset: int, dtype: torch.dtype, numel: int) -> torch.Tensor:
    """`numel` elements at `offset` as a 1-d tensor, mapped copy-on-write from the file."""
    if numel == 0:
        return torch.empty(0, dtype=dtype)
    raw = np.memmap(path, dtype=np.uint8, mode="c", offset=offset,
                    shape=(numel * dtype.itemsize,))
    return torch.from_numpy(raw).view(dtype)

