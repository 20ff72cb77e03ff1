"""Restricted unpickling: load untrusted pickles (datasets, checkpoints) through an allow-list.

`pickle.load` executes whatever callable a pickle names. Here every global a pickle asks for
is looked up in an explicit mapping `(module, name) -> object`; anything else is refused
before it is imported or called, with an error that names the file and the class.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
from pathlib import Path
from typing import IO, Any, Mapping

import numpy as np

from crosskd.errors import UserError

AllowList = Mapping[tuple[str, str], Any]


class UnsafePickleError(UserError):
    """A pickle names a class or function outside the allow-list (it is never imported)."""


class CorruptPickleError(UserError):
    """A pickle is truncated or malformed; the file should be downloaded / extracted again."""


def _numpy_module_aliases(name: str) -> tuple[str, ...]:
    """numpy 1 pickles say `numpy.core.X`, numpy 2 pickles say `numpy._core.X`."""
    return (f"numpy.core.{name}", f"numpy._core.{name}")


def _fresh_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    """`numpy.dtype` that always copies, so a pickle's BUILD never alters numpy's shared dtypes."""
    return np.dtype(spec, bool(align), True)


def _check_dtype_state(dtype: np.dtype, state: Any, what: str) -> None:
    """Accept only the plain dtype states numpy writes; a forged size or layout can crash numpy."""
    if not (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)):
        raise CorruptPickleError(f"{what}: malformed numpy dtype state {state!r}")
    byteorder, subarray, names, fields, elsize, alignment = state[1:7]
    size_ok = elsize == dtype.itemsize or (elsize == -1 and dtype.kind not in "SUV")
    align_ok = alignment in (-1, dtype.alignment)
    if (byteorder not in ("<", ">", "|", "=") or subarray is not None or names is not None
            or fields is not None or not size_ok or not align_ok):
        raise CorruptPickleError(f"{what}: unsupported or forged numpy dtype state {state!r} "
                                 f"for {dtype}; the file is corrupt")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """Array and scalar reconstructors numpy writes into pickles, under numpy 1 and 2 names."""
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    numeric = np._core.numeric if hasattr(np, "_core") else np.core.numeric
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _fresh_dtype,
    }
    for module in _numpy_module_aliases("multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    for module in _numpy_module_aliases("numeric"):
        allowed[(module, "_frombuffer")] = numeric._frombuffer
    for type_name in ("bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                      "uint64", "float16", "float32", "float64", "longdouble", "complex64",
                      "complex128", "str_", "bytes_"):
        scalar_type = getattr(np, type_name)
        allowed[("numpy", type_name)] = scalar_type
        allowed[("numpy", scalar_type.__name__)] = scalar_type
    for dtype_name in ("Float16DType", "Float32DType", "Float64DType", "Int32DType", "Int64DType",
                       "UInt8DType", "BoolDType", "StrDType", "BytesDType", "ObjectDType"):
        dtype_class = getattr(np.dtypes, dtype_name, None)
        if dtype_class is not None:
            allowed[("numpy.dtypes", dtype_name)] = dtype_class
    return allowed


#: numpy arrays, dtypes and scalars (numpy 1 and numpy 2 spellings).
NUMPY_GLOBALS: dict[tuple[str, str], Any] = _numpy_globals()

def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """Stand-in for `_codecs.encode`, which protocols 0-2 use to pickle bytes (latin1 only)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _empty_bytes(*args: Any) -> bytes:
    """Stand-in for `bytes`, which protocols 0-2 call with no argument for b''."""
    if args:
        raise UnsafePickleError("refusing bytes() with arguments")
    return b""


#: plain containers that pickles of dicts/lists/sets may reference by name.
CONTAINER_GLOBALS: dict[tuple[str, str], Any] = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): bytearray,
    ("__builtin__", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_encode,
    ("builtins", "bytes"): _empty_bytes,
    ("__builtin__", "bytes"): _empty_bytes,
}


def describe_source(source: str | os.PathLike | IO[bytes]) -> str:
    """A name for error messages: the path, or the file object's name."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return str(getattr(source, "name", "<in-memory pickle>"))


#: what unpickling a truncated or malformed stream raises (reported as CorruptPickleError).
CORRUPTION_ERRORS = (EOFError, pickle.UnpicklingError, ValueError, TypeError, LookupError,
                     AttributeError, MemoryError, OverflowError, UnicodeDecodeError,
                     struct.error, SystemError, RecursionError)


class AllowListMixin:
    """Resolve globals only through an allow-list and refuse persistent ids (any Unpickler)."""

    def __init__(self, file: IO[bytes], allowed: AllowList, what: str) -> None:
        super().__init__(file)  # type: ignore[call-arg]
        self._allowed = allowed
        self._what = what

    def find_class(self, module: str, name: str) -> Any:
        """Return the allowed object for `module.name`; refuse anything else without importing it."""
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._what}: refusing to load {module}.{name} from this pickle (not on the "
                "allow-list of data types; a pickle can run code when loaded). If the file is "
                "from the official release it may be corrupt; otherwise convert it to plain "
                "dicts of numpy arrays") from None

    def persistent_load(self, pid: Any) -> Any:
        """Persistent ids are only meaningful to loaders that override this (e.g. torch)."""
        raise UnsafePickleError(f"{self._what}: unexpected persistent id {pid!r} in pickle")


class RestrictedUnpickler(AllowListMixin, pickle._Unpickler):  # type: ignore[name-defined]
    """The pure-Python Unpickler restricted to an allow-list, vetting numpy dtype states.

    Pure Python because BUILD must be intercepted: numpy applies a dtype's pickled state without
    checking it, and a forged state (e.g. a negative item size) crashes the interpreter.
    """

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def _load_build(self) -> None:
        if isinstance(self.stack[-2], np.dtype):
            _check_dtype_state(self.stack[-2], self.stack[-1], self._what)
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]

    dispatch[pickle.BUILD[0]] = _load_build


def restricted_load(source: str | os.PathLike | IO[bytes], allowed: AllowList,
                    what: str | None = None,
                    unpickler: type[AllowListMixin] = RestrictedUnpickler) -> Any:
    """Unpickle `source` (a path or binary file) resolving globals only through `allowed`.

    Raises UnsafePickleError for a global outside the allow-list and CorruptPickleError for a
    truncated or malformed stream; both name the file (`what` overrides the name).
    """
    what = what or describe_source(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            handle: IO[bytes] = open(Path(source), "rb")
        except FileNotFoundError:
            raise UserError(f"file not found: {source}") from None
        with handle:
            return _load(handle, allowed, what, unpickler)
    return _load(source, allowed, what, unpickler)


def _load(handle: IO[bytes], allowed: AllowList, what: str,
          unpickler: type[AllowListMixin]) -> Any:
    try:
        return unpickler(handle, allowed, what).load()  # type: ignore[attr-defined]
    except UserError:
        raise
    except CORRUPTION_ERRORS as err:
        raise CorruptPickleError(
            f"{what}: cannot read pickle ({type(err).__name__}: {err}); the file is truncated "
            "or corrupt - download or extract it again") from None


def restricted_loads(data: bytes, allowed: AllowList, what: str = "<bytes>") -> Any:
    """`restricted_load` for an in-memory pickle."""
    return restricted_load(io.BytesIO(data), allowed, what)
