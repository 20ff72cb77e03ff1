"""Streaming writers for dataset pickles in the published format (plain dicts of numpy arrays).

A dict of tens of GB is written item by item: each key and value is pickled on its own in
memo-free ("fast") protocol-3 mode and the bodies are joined into one dict pickle, so memory
stays at one item. The result loads with `pickle.load` exactly like the published files.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import sys
import types
from pathlib import Path
from typing import Any, Iterable, Iterator

from crosskd.diskwrites import atomic_path, reported_write

_PROTOCOL = 3
_BATCH = 1000  # items per SETITEMS, as the standard pickler does


def _body(obj: Any) -> bytes:
    """Opcodes of `obj` without the PROTO header and the STOP opcode (no memo references)."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=_PROTOCOL)
    pickler.fast = True
    pickler.dump(obj)
    data = buffer.getvalue()
    return data[2:-1]


@contextlib.contextmanager
def _written(path: Path) -> Iterator[Path]:
    """A temporary path renamed to `path` when complete; a full disk is one line naming it."""
    with reported_write(path, "no partial file was left; free disk space or choose another "
                        "--out"), atomic_path(path) as tmp:
        yield tmp


def write_dict_pickle(path: Path, items: Iterable[tuple[str, Any]]) -> None:
    """Write `{key: value for key, value in items}` as a pickle, one item in memory at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _written(path) as tmp, open(tmp, "wb") as handle:
        handle.write(b"\x80" + bytes([_PROTOCOL]) + pickle.EMPTY_DICT)
        iterator: Iterator[tuple[str, Any]] = iter(items)
        while True:
            chunk = [(key, value) for _, (key, value) in zip(range(_BATCH), iterator)]
            if not chunk:
                break
            handle.write(pickle.MARK)
            for key, value in chunk:
                handle.write(_body(key))
                handle.write(_body(value))
            handle.write(pickle.SETITEMS)
        handle.write(pickle.STOP)


def write_pickle(path: Path, obj: Any) -> None:
    """Write a small object with the standard pickler."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _written(path) as tmp, open(tmp, "wb") as handle:
        pickle.dump(obj, handle, protocol=4)


class _OriginalExpertStore:
    """Carries the attributes of the original's ExpertStore, pickled under its module name."""


@contextlib.contextmanager
def _original_module(module: str) -> Iterator[type]:
    """Make `_OriginalExpertStore` picklable as `<module>.ExpertStore` while writing."""
    fake = types.ModuleType(module)
    cls = type("ExpertStore", (_OriginalExpertStore,), {"__module__": module})
    fake.ExpertStore = cls  # type: ignore[attr-defined]
    previous = sys.modules.get(module)
    sys.modules[module] = fake
    try:
        yield cls
    finally:
        if previous is None:
            del sys.modules[module]
        else:
            sys.modules[module] = previous


def write_expert_store(path: Path, state: dict[str, Any]) -> None:
    """Write a pickle of the original's `datastructures.ExpertStore` with the given state."""
    with _original_module("datastructures") as cls:
        store = cls()
        store.__dict__.update(state)
        write_pickle(path, store)
