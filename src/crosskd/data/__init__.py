"""Datasets on disk: layouts, safe pickle reading, the packed feature store, batches, synthesis.

`Batch` and `RetrievalData` load torch; they are imported on first use, so the torch-free
parts (layouts, the cache listing) serve commands such as `crosskd zoo list` without it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {"Batch": "crosskd.data.batch", "RetrievalData": "crosskd.data.retrieval"}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_LAZY[name]), name)
