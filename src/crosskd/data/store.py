"""The packed feature store: every source pickle becomes one memory-mapped `.npy` of rows plus
small index arrays, cached on disk under a key made of the file's content fingerprint
(crosskd.data.fingerprint) and the packing options, so a second load only maps files.
An entry whose pieces are missing, truncated or inconsistent is rebuilt, with one warning.

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
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from crosskd.data.cache import prune_replaced
from crosskd.data.errors import DataError, MissingVideoError
from crosskd.data.fingerprint import fingerprint, signature
from crosskd.data.pickles import ExpertStore, SpooledArray, open_spool, spool_pickle
from crosskd.diskwrites import reported_write
from crosskd.safe_pickle import CorruptPickleError

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: keyed by content fingerprint, not path/size/mtime
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


def _entry_key(digest: str, options: dict[str, Any]) -> str:
    payload = {"content": digest, "version": CACHE_VERSION, **options}
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _described(value: Any) -> str:
    """What a pickle entry holds, in the user's terms (never our SpooledArray wrapper)."""
    array = value.array if isinstance(value, SpooledArray) else value
    if isinstance(array, np.ndarray):
        return f"a {array.ndim}-d {array.dtype} array of shape {tuple(array.shape)}"
    return f"a {type(array).__name__}"


def _not_an_array(source: Path, key: str, value: Any, expected: str) -> DataError:
    return DataError(f"{source}: entry {key!r} holds {_described(value)}, expected {expected}; "
                     "re-extract the file or convert it to that layout")


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
            raise _not_an_array(source, key, value, "a numeric array of rank 1 or 2 "
                                "(or a float NaN for a missing expert)")
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
                raise _not_an_array(source, key, caption, "a list of numeric arrays "
                                    "[tokens, width], one per caption")
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
          max_rows: int | None, content: str) -> None:
    """Spool `source` into `out_dir/values.npy` and write the index beside it; meta.json
    records the source and its content digest (`crosskd cache list` checks them)."""
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
        {"source": str(source.resolve()), "content": content, "kind": kind, "keys": keys,
         "modalities": list(modalities)}))


class DamagedCacheError(Exception):
    """A cache entry that cannot be used as it is (it is rebuilt, never reported to the user)."""


_INDEX_NAMES = {"expert": ("start", "rows", "avail", "finite"), "captions": ("first", "num"),
                "teacher": ()}


def _read_meta(out_dir: Path) -> dict[str, Any]:
    try:
        meta = json.loads((out_dir / "meta.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DamagedCacheError("meta.json is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DamagedCacheError(f"meta.json is unreadable ({type(err).__name__})") from None
    if not (isinstance(meta, dict) and meta.get("kind") in KINDS
            and isinstance(meta.get("keys"), list) and isinstance(meta.get("modalities"), list)
            and all(isinstance(key, str) for key in meta["keys"])):
        raise DamagedCacheError("meta.json is incomplete")
    return meta


def _read_index(out_dir: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(out_dir / "index.npz") as index:
            return {name: index[name] for name in index.files}
    except FileNotFoundError:
        raise DamagedCacheError("index.npz is missing") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        raise DamagedCacheError(f"index.npz is unreadable ({type(err).__name__})") from None


def _check_consistent(meta: dict[str, Any], index: dict[str, np.ndarray], rows: int) -> None:
    """Every per-video array has one entry per key, and every row it names exists."""
    count = len(meta["keys"])
    per_video = [*_INDEX_NAMES[meta["kind"]],
                 *(f"{name}_{m}" for m in range(len(meta["modalities"]))
                   for name in ("vid_row", "text_row", "text_num"))]
    if any(name not in index or index[name].shape != (count,) for name in per_video):
        raise DamagedCacheError("index.npz does not match meta.json")
    extents = [(index.get("start"), index.get("rows")),
               (index.get("cap_start"), index.get("cap_rows"))]
    extents += [(index[f"vid_row_{m}"], 1) for m in range(len(meta["modalities"]))]
    extents += [(index[f"text_row_{m}"], index[f"text_num_{m}"])
                for m in range(len(meta["modalities"]))]
    for start, length in extents:
        if start is not None and start.size and (start.min() < 0
                                                 or (start + length).max() > rows):
            raise DamagedCacheError("index.npz names rows beyond values.npy")


def _open(out_dir: Path, source: Path) -> PackedFile:
    """Map a cache entry, raising DamagedCacheError for any missing or inconsistent piece."""
    meta = _read_meta(out_dir)
    index = _read_index(out_dir)
    try:
        values = open_spool(out_dir / "values.npy")
    except CorruptPickleError:
        raise DamagedCacheError("values.npy is missing or truncated") from None
    if values.ndim != 2:
        raise DamagedCacheError("values.npy is not a table of rows")
    _check_consistent(meta, index, values.shape[0])
    return PackedFile(source, meta["kind"], values, meta["keys"], index,
                      tuple(meta["modalities"]))


def _discard(out_dir: Path) -> None:
    """Move a damaged entry aside (atomically) and delete it."""
    aside = out_dir.with_name(f".damaged-{out_dir.name}-{os.getpid()}")
    try:
        os.rename(out_dir, aside)
    except OSError:
        return  # already gone, or another process is replacing it
    shutil.rmtree(aside, ignore_errors=True)


def _pack_entry(source: Path, kind: str, out_dir: Path, dtype: np.dtype,
                max_rows: int | None, stat: dict[str, Any], content: str) -> None:
    """Pack into a private folder, then rename it into place (a crash leaves no entry)."""
    fix = ("nothing was left behind; point --cache_dir (or $CROSSKD_CACHE_DIR) at a "
           "writable disk with room")
    with reported_write(out_dir.parent, fix, needed=source.stat().st_size,
                        action=f"pack {source.name} into"):
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{source.stem}-", dir=out_dir.parent))
        try:
            _pack(source, kind, work, dtype, max_rows, content)
            if signature(source) != stat:
                raise DataError(f"{source} changed while it was being packed; wait until it "
                                "is completely written (or copied) and run again")
            try:
                os.rename(work, out_dir)
            except OSError:  # another process packed the same file meanwhile
                shutil.rmtree(work, ignore_errors=True)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise


def load_packed(source: Path, kind: str, cache_dir: Path, dtype: str | np.dtype = "float32",
                max_rows: int | None = None) -> PackedFile:
    """Pack `source` once into `cache_dir` (reused while its content is unchanged) and map it."""
    dtype = np.dtype(dtype)
    digest, stat = fingerprint(source, cache_dir)
    key = _entry_key(digest, {"kind": kind, "dtype": dtype.str, "max_rows": max_rows})
    out_dir = cache_dir / f"{source.stem}-{key}"
    if out_dir.is_dir():
        try:
            log.debug("cache hit for %s", source)
            return _open(out_dir, source)
        except DamagedCacheError as err:
            log.warning("cached copy of %s in %s is damaged (%s); rebuilding it", source,
                        out_dir, err)
            _discard(out_dir)
    log.info("packing %s into %s", source, out_dir)
    _pack_entry(source, kind, out_dir, dtype, max_rows, stat, digest)
    prune_replaced(cache_dir, source, digest, keep=out_dir)
    try:
        return _open(out_dir, source)
    except DamagedCacheError as err:
        raise DataError(f"the packed copy of {source} in {out_dir} cannot be read back ({err}); "
                        "check the disk holding --cache_dir") from None
