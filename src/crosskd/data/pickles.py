"""Safe, low-memory reading of the dataset pickles.

Feature pickles are read through an allow-list (numpy arrays and scalars, plain containers and
the original's `ExpertStore`, rebuilt as our own class). Numeric arrays are not kept as Python
objects: each is written, as it is unpickled, into an append-only `.npy` spool file and replaced
by a small `SpooledArray` handle, so reading a 20 GB text-feature pickle needs about one array
of memory. The pure-Python Unpickler is used because its memo can be told to forget the raw
array bytes (the C Unpickler's memo keeps every one of them alive until the end).
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path
from typing import IO, Any

import numpy as np

from crosskd.data.errors import FeatureDimError
from crosskd.safe_pickle import (CONTAINER_GLOBALS, NUMPY_GLOBALS, CorruptPickleError,
                                 RestrictedUnpickler, restricted_load)

_HEADER_BYTES = 256
_FORGET_BYTES = 4096  # raw buffers larger than this are not kept in the unpickler memo


class ExpertStore:
    """The original's `ExpertStore` (keys, one float16 row per video, missing set), rebuilt as data."""

    keys: list[str]
    dim: int
    store: Any
    keymap: dict[str, int]
    missing: set[str]

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Keep only the data attributes; the original's methods are never needed."""
        keys = state.get("keys", [])
        keys = keys.array if isinstance(keys, SpooledArray) else keys
        self.keys = [str(key) for key in keys]
        self.dim = int(state.get("dim", 0))
        self.store = state.get("store")
        self.keymap = dict(state.get("keymap") or {key: i for i, key in enumerate(self.keys)})
        self.missing = set(state.get("missing") or ())


def _safe_reconstructor(cls: type, base: type, state: Any) -> Any:
    """Stand-in for `copyreg._reconstructor` (protocols 0-1) that only builds ExpertStore."""
    if cls is not ExpertStore or base is not object:
        raise pickle.UnpicklingError(f"copyreg._reconstructor refused for {cls!r}")
    return ExpertStore.__new__(ExpertStore)


#: everything a dataset pickle may name: numpy data, containers and the original ExpertStore.
DATASET_GLOBALS: dict[tuple[str, str], Any] = {
    **NUMPY_GLOBALS,
    **CONTAINER_GLOBALS,
    ("datastructures", "ExpertStore"): ExpertStore,
    ("utils.datastructures", "ExpertStore"): ExpertStore,
    ("copyreg", "_reconstructor"): _safe_reconstructor,
    ("copy_reg", "_reconstructor"): _safe_reconstructor,
    ("builtins", "object"): object,
    ("__builtin__", "object"): object,
}


def load_small_pickle(path: Path, what: str | None = None) -> Any:
    """Read a small dataset pickle (captions, index files) fully into memory, safely."""
    return restricted_load(path, DATASET_GLOBALS, what or str(path))


class Spool:
    """An append-only `.npy` file of rows `[R, D]`, its header written when it is closed."""

    def __init__(self, path: Path, dtype: np.dtype, max_rows: int | None) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self.max_rows = max_rows
        self.rows = 0
        self.width: int | None = None
        self._file: IO[bytes] = open(path, "wb")
        self._file.write(b"\0" * _HEADER_BYTES)

    def append(self, array: np.ndarray, source: str) -> tuple[int, int, bool]:
        """Write the (truncated) rows of `array`; return (first row, rows written, all finite)."""
        rows = array.reshape(1, -1) if array.ndim == 1 else array.reshape(-1, array.shape[-1])
        if self.max_rows is not None:
            rows = rows[: self.max_rows]
        if self.width is None:
            self.width = rows.shape[1]
        elif rows.shape[1] != self.width:
            raise FeatureDimError(f"{source}: arrays of different widths in one file "
                                  f"({self.width} and {rows.shape[1]}); the file is inconsistent")
        converted = np.ascontiguousarray(rows, dtype=self.dtype)
        self._file.write(converted.tobytes())
        start = self.rows
        self.rows += len(converted)
        return start, len(converted), bool(np.isfinite(rows).all())

    def close(self) -> None:
        """Write the `.npy` header for the final shape into the reserved space."""
        shape = (self.rows, self.width or 0)
        header = repr({"descr": np.lib.format.dtype_to_descr(self.dtype),
                       "fortran_order": False, "shape": shape})
        room = _HEADER_BYTES - 10 - 1
        try:
            self._file.seek(0)
            self._file.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", _HEADER_BYTES - 10)
                             + header.ljust(room).encode("latin1") + b"\n")
        finally:
            self._file.close()  # also on a full disk, so deleting the file frees its space


class SpooledArray:
    """Handle standing for a numeric array written to a Spool (or a small non-numeric array)."""

    __slots__ = ("_spool", "_source", "start", "rows", "finite", "array")

    def __init__(self, spool: Spool, source: str) -> None:
        self._spool = spool
        self._source = source
        self.start = 0
        self.rows = 0
        self.finite = True
        self.array: np.ndarray | None = None

    def accept(self, array: np.ndarray) -> SpooledArray:
        """Spool a numeric array of rank 1-2; keep anything else (strings, objects) in memory."""
        if array.dtype.kind in "fiu" and array.ndim in (1, 2):
            self.start, self.rows, self.finite = self._spool.append(array, self._source)
        else:
            self.array = array
        return self

    def __setstate__(self, state: tuple) -> None:
        """numpy's array state: (version, shape, dtype, fortran, raw) or without the version."""
        shape, dtype, fortran, raw = state[-4:]
        if raw is _FORGOTTEN:
            raise pickle.UnpicklingError("array data refers to an earlier, discarded buffer")
        if isinstance(raw, list):
            array = np.array(raw, dtype=dtype).reshape(shape)
        else:
            array = np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")
        self.accept(array)


_FORGOTTEN = object()


class _SpoolingUnpickler(RestrictedUnpickler):
    """Restricted Unpickler that spools arrays and forgets their raw bytes."""

    dispatch = dict(RestrictedUnpickler.dispatch)

    def _remember(self, index: int) -> None:
        top = self.stack[-1]
        big = isinstance(top, (bytes, bytearray)) and len(top) > _FORGET_BYTES
        self.memo[index] = _FORGOTTEN if big else top

    def _load_memoize(self) -> None:
        self._remember(len(self.memo))

    def _load_binput(self) -> None:
        self._remember(self.read(1)[0])

    def _load_long_binput(self) -> None:
        self._remember(struct.unpack("<I", self.read(4))[0])

    def _load_put(self) -> None:
        self._remember(int(self.readline()[:-1].decode("ascii")))

    dispatch[pickle.MEMOIZE[0]] = _load_memoize
    dispatch[pickle.BINPUT[0]] = _load_binput
    dispatch[pickle.LONG_BINPUT[0]] = _load_long_binput
    dispatch[pickle.PUT[0]] = _load_put


def _spooling_globals(spool: Spool, source: str) -> dict[tuple[str, str], Any]:
    """The dataset allow-list with numpy's array constructors redirected into `spool`."""

    def reconstruct(subtype: type, shape: Any, dtype: Any) -> SpooledArray:
        if subtype is not np.ndarray:
            raise pickle.UnpicklingError(f"array subtype {subtype!r} is not supported")
        return SpooledArray(spool, source)

    def frombuffer(buffer: Any, dtype: Any, shape: tuple, order: str) -> SpooledArray:
        if buffer is _FORGOTTEN:
            raise pickle.UnpicklingError("array data refers to an earlier, discarded buffer")
        array = np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)
        return SpooledArray(spool, source).accept(array)

    allowed = dict(DATASET_GLOBALS)
    for (module, name) in list(allowed):
        if name == "_reconstruct":
            allowed[(module, name)] = reconstruct
        elif name == "_frombuffer":
            allowed[(module, name)] = frombuffer
    return allowed


def spool_pickle(path: Path, out_path: Path, dtype: np.dtype, max_rows: int | None,
                 what: str | None = None) -> Any:
    """Unpickle `path` safely, writing every numeric array into the `.npy` file `out_path`.

    Returns the unpickled structure with arrays replaced by SpooledArray handles; rows of
    each array beyond `max_rows` are dropped (the batches never use them).
    """
    what = what or str(path)
    spool = Spool(out_path, dtype, max_rows)
    try:
        tree = restricted_load(path, _spooling_globals(spool, what), what,
                               unpickler=_SpoolingUnpickler)
    finally:
        spool.close()
    return tree


def open_spool(path: Path) -> np.ndarray:
    """Memory-map a spool written by `spool_pickle`."""
    try:
        return np.load(path, mmap_mode="r")
    except (ValueError, OSError) as err:
        raise CorruptPickleError(f"{path}: cached feature file unreadable ({err}); delete the "
                                 "cache folder to rebuild it") from None

