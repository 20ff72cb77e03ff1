"""The packed feature store: every source pickle becomes one memory-mapped `.npy` of rows plus
small index arrays, cached on disk under a key that changes with the file (size, mtime) and the
packing options, so a second load only maps files.

Per-video entries are (first row, number of rows, available, finite); caption files add a
per-video (first caption, number of captions) level; teacher files one entry per modality.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from crosskd.data.errors import DataError, MissingVideoError
from crosskd.data.pickles import ExpertStore, SpooledArray, open_spool, spool_pickle

log = logging.getLogger(__name__)

CACHE_VERSION = 1
KINDS = ("expert", "captions", "teacher")


@dataclass
class PackedFile:
    """One source pickle packed: `values` [R, D] (memory-mapped) and per-entry index arrays."""

    source: Path
    kind: str
    values: np.ndarray
    keys: list[str]
    index: dict[str, np.ndarray]
    modalities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self._positions = {key: i for i, key in enumerate(self.keys)}

    @property
    def width(self) -> int:
        """Feature width D of the rows."""
        return int(self.values.shape[1])

    def positions(self, video_ids: Sequence[str], what: str) -> np.ndarray:
        """Entry index of each video; a video without an entry is an error naming it."""
        try:
            return np.fromiter((self._positions[v] for v in video_ids), np.int64, len(video_ids))
        except KeyError as err:
            missing = [v for v in video_ids if v not in self._positions]
            raise MissingVideoError(
                f"{what} file {self.source} has no entry for {len(missing)} video(s) of the "
                f"split list, e.g. {missing[:3]}; the split list and the feature file come from "
                "different dataset versions (re-extract the tarball)") from err


def _stat_key(source: Path, options: dict[str, Any]) -> str:
    stat = source.stat()
    payload = {"path": str(source.resolve()), "size": stat.st_size, "mtime": stat.st_mtime_ns,
               "version": CACHE_VERSION, **options}
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _not_an_array(source: Path, key: str, value: Any) -> DataError:
    return DataError(f"{source}: entry {key!r} holds {type(value).__name__}, expected a numpy "
                     "array (or a float NaN for a missing expert)")


def _index_experts(tree: Any, values: np.ndarray, source: Path) -> tuple[list[str], dict]:
    """Per video (start, rows, avail, finite) of an expert file (a dict or an ExpertStore)."""
    if isinstance(tree, ExpertStore):
        return _index_expert_store(tree, values, source)
    if not isinstance(tree, dict):
        raise DataError(f"{source}: expected a dict video id -> array, found "
                        f"{type(tree).__name__}")
    keys = [str(key) for key in tree]
    count = len(keys)
    start, rows = np.zeros(count, np.int64), np.zeros(count, np.int64)
    avail, finite = np.zeros(count, bool), np.ones(count, bool)
    for i, (key, value) in enumerate(tree.items()):
        if isinstance(value, SpooledArray) and value.array is None:
            start[i], rows[i], avail[i], finite[i] = value.start, value.rows, True, value.finite
        elif not (isinstance(value, float) and math.isnan(value)):
            raise _not_an_array(source, key, value)
    return keys, {"start": start, "rows": rows, "avail": avail, "finite": finite}


def _index_expert_store(store: ExpertStore, values: np.ndarray,
                        source: Path) -> tuple[list[str], dict]:
    """ExpertStore: one row per key; rows that are all NaN, or keys in `missing`, are missing."""
    if not isinstance(store.store, SpooledArray) or store.store.array is not None:
        raise DataError(f"{source}: ExpertStore without a numeric `store` array")
    keys = list(store.keymap)
    row_ids = np.array([store.keymap[k] for k in keys], np.int64)
    rows = np.asarray(values[store.store.start: store.store.start + store.store.rows])[row_ids]
    nan_rows = np.isnan(rows).all(axis=1)
    avail = ~nan_rows & np.array([k not in store.missing for k in keys], bool)
    finite = np.isfinite(rows).all(axis=1) | ~avail
    start = store.store.start + row_ids
    return keys, {"start": start, "rows": np.ones(len(keys), np.int64), "avail": avail,
                  "finite": finite}


def _index_captions(tree: Any, source: Path) -> tuple[list[str], dict]:
    """Per video (first caption, number of captions); per caption (start, rows, finite)."""
    if not isinstance(tree, dict):
        raise DataError(f"{source}: expected a dict video id -> list of caption arrays")
    keys = [str(key) for key in tree]
    first, num = np.zeros(len(keys), np.int64), np.zeros(len(keys), np.int64)
    start, rows, finite = [], [], []
    for i, (key, captions) in enumerate(tree.items()):
        if isinstance(captions, SpooledArray):
            captions = [captions]
        first[i], num[i] = len(start), len(captions)
        for caption in captions:
            if not isinstance(caption, SpooledArray) or caption.array is not None:
                raise _not_an_array(source, key, caption)
            start.append(caption.start)
            rows.append(caption.rows)
            finite.append(caption.finite)
    return keys, {"first": first, "num": num, "cap_start": np.array(start, np.int64),
                  "cap_rows": np.array(rows, np.int64), "cap_finite": np.array(finite, bool)}


def _index_teacher(tree: Any, source: Path) -> tuple[list[str], dict, tuple[str, ...]]:
    """Per modality and video: video row, first text row and number of caption rows."""
    if not isinstance(tree, dict) or not tree:
        raise DataError(f"{source}: expected a dict video id -> {{vid_embds, text_embds}}")
    keys = [str(key) for key in tree]
    modalities = tuple(next(iter(tree.values()))["vid_embds"])
    index: dict[str, np.ndarray] = {}
    for m, modality in enumerate(modalities):
        vid_row, text_row, text_num = (np.zeros(len(keys), np.int64) for _ in range(3))
        for i, entry in enumerate(tree.values()):
            try:
                video, text = entry["vid_embds"][modality], entry["text_embds"][modality]
            except (KeyError, TypeError):
                raise DataError(f"{source}: entry {keys[i]!r} lacks vid_embds/text_embds for "
                                f"modality {modality!r}") from None
            vid_row[i], text_row[i], text_num[i] = video.start, text.start, text.rows
        index[f"vid_row_{m}"], index[f"text_row_{m}"], index[f"text_num_{m}"] = (
            vid_row, text_row, text_num)
    return keys, index, modalities


def _pack(source: Path, kind: str, out_dir: Path, dtype: np.dtype,
          max_rows: int | None) -> None:
    """Spool `source` into `out_dir/values.npy` and write the index beside it."""
    tree = spool_pickle(source, out_dir / "values.npy", dtype, max_rows)
    values = open_spool(out_dir / "values.npy")
    modalities: tuple[str, ...] = ()
    if kind == "expert":
        keys, index = _index_experts(tree, values, source)
    elif kind == "captions":
        keys, index = _index_captions(tree, source)
    else:
        keys, index, modalities = _index_teacher(tree, source)
    np.savez(out_dir / "index.npz", **index)
    (out_dir / "meta.json").write_text(json.dumps(
        {"source": str(source), "kind": kind, "keys": keys, "modalities": list(modalities)}))


def _open(out_dir: Path, source: Path) -> PackedFile:
    meta = json.loads((out_dir / "meta.json").read_text())
    with np.load(out_dir / "index.npz") as index:
        arrays = {name: index[name] for name in index.files}
    return PackedFile(source, meta["kind"], open_spool(out_dir / "values.npy"), meta["keys"],
                      arrays, tuple(meta["modalities"]))


def load_packed(source: Path, kind: str, cache_dir: Path, dtype: str | np.dtype = "float32",
                max_rows: int | None = None) -> PackedFile:
    """Pack `source` once into `cache_dir` (reused while the file is unchanged) and map it."""
    dtype = np.dtype(dtype)
    key = _stat_key(source, {"kind": kind, "dtype": dtype.str, "max_rows": max_rows})
    out_dir = cache_dir / f"{source.stem}-{key}"
    if (out_dir / "meta.json").is_file():
        log.debug("cache hit for %s", source)
        return _open(out_dir, source)
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("packing %s into %s", source, out_dir)
    work = Path(tempfile.mkdtemp(prefix=f".{source.stem}-", dir=cache_dir))
    try:
        _pack(source, kind, work, dtype, max_rows)
        try:
            os.rename(work, out_dir)
        except OSError:  # another process packed the same file meanwhile
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return _open(out_dir, source)
