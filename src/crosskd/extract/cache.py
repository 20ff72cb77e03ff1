"""Per-video results on disk, so a rerun or an interrupted run skips finished videos and
shards of one collection can be merged. One `.npz` per video (no pickle: loaded with
allow_pickle=False), in a folder keyed by everything that shapes the numbers.

A segmented extraction (its segmentation is part of the key) stores each segment's result
as `segments/<video id>/<segment id>.npz` (`segment_result`), and the video's own entry, its
segment table, once every segment is stored: an interrupted video resumes at its first
segment not stored."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crosskd.diskwrites import atomic_path, reported_write

_META = "meta"
_FIX = "free disk space or choose another --out"


@dataclass
class VideoResult:
    """What extraction produced for one video."""

    features: dict[str, np.ndarray] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    #: per expert modality, its text with times and confidences (`Result.timed_text`).
    timed_text: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    error: str | None = None
    duration: float = 0.0
    keyframe: dict[str, Any] | None = None
    source: dict[str, Any] = field(default_factory=dict)
    #: a segmented video's entry: its segments (`{"id", "start", "end"}`), in time order.
    segments: list[dict[str, Any]] | None = None
    #: a segment's result: its `[start, end]` in the video.
    window: list[float] | None = None

    def meta(self) -> dict[str, Any]:
        meta = {"texts": self.texts, "timed_text": self.timed_text, "missing": self.missing,
                "error": self.error, "duration": self.duration, "keyframe": self.keyframe,
                "source": self.source}
        # only where set, so that a whole video's entry stays what it was before segments
        meta.update({key: value for key, value in (("segments", self.segments),
                                                    ("window", self.window))
                     if value is not None})
        return meta


#: what tells one version of a video file from another (a changed file is extracted again).
_VERSION_KEYS = ("size", "mtime_ns")


def source_signature(path: Path) -> dict[str, Any]:
    """The video file as the cache knows it: its absolute path, size and time."""
    stat = path.stat()
    return {"path": os.path.abspath(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def segment_result(video_id: str, segment_id: str) -> str:
    """The name a segment's result is stored under (apart from the video entries)."""
    return f"segments/{video_id}/{segment_id}"


def same_version(stored: Any, source: dict[str, Any]) -> bool:
    """Whether a stored result is of this version of the file: size and time, not the path,
    so running from another folder or moving the videos keeps the finished results."""
    return isinstance(stored, dict) and all(
        key in source and stored.get(key) == source[key] for key in _VERSION_KEYS)


class ResultCache:
    """`<folder>/<key>/<name>.npz`; `key` hashes the decode settings and the experts (and
    the segmentation); a name is a video id, or a `segment_result`."""

    def __init__(self, folder: Path, settings: dict[str, Any]) -> None:
        text = json.dumps(settings, sort_keys=True, default=str)
        self.folder = folder / hashlib.sha256(text.encode()).hexdigest()[:16]
        with reported_write(self.folder, _FIX, action="create"):
            self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.npz"

    def load(self, name: str, source: dict[str, Any] | None = None) -> VideoResult | None:
        """The stored result, or None when absent, damaged or of another version of the file."""
        try:
            with np.load(self.path(name), allow_pickle=False) as data:
                meta = json.loads(str(data[_META]))
                features = {key[2:]: data[key] for key in data.files if key.startswith("f:")}
        except (OSError, ValueError, KeyError, EOFError):
            return None
        if source is not None and not same_version(meta.get("source"), source):
            return None
        return VideoResult(features=features, **meta)

    def meta(self, name: str) -> dict[str, Any] | None:
        """A stored result without its features (missing experts, error, source, ...)."""
        try:
            with np.load(self.path(name), allow_pickle=False) as data:
                meta = json.loads(str(data[_META]))
        except (OSError, ValueError, KeyError, EOFError):
            return None
        return meta if isinstance(meta, dict) else None

    def has(self, name: str, source: dict[str, Any]) -> bool:
        """Whether a result of this version of the video is stored (reads its metadata only)."""
        meta = self.meta(name)
        return meta is not None and same_version(meta.get("source"), source)

    def feature(self, name: str, modality: str) -> np.ndarray | None:
        """One feature of a stored video (None: missing), read without the others."""
        with np.load(self.path(name), allow_pickle=False) as data:
            key = f"f:{modality}"
            return data[key] if key in data.files else None

    def store(self, name: str, result: VideoResult) -> None:
        """Write atomically: a run killed mid-write leaves no entry."""
        arrays = {f"f:{modality}": value for modality, value in result.features.items()}
        path = self.path(name)
        with reported_write(path, _FIX):
            path.parent.mkdir(parents=True, exist_ok=True)
        with reported_write(path, _FIX), atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays, **{_META: np.array(json.dumps(result.meta()))})

    def _marker(self, name: str, digest: str) -> Path:
        return self.folder / f"{name}.{digest}"

    def mark_done(self, shard: tuple[int, int], digest: str) -> None:
        """Shard I of N has stored every result of the collection `digest` names."""
        path = self._marker(f"done-{shard[0]}-of-{shard[1]}", digest)
        with reported_write(path, _FIX):
            path.touch()

    def claim_merge(self, count: int, digest: str) -> bool:
        """True for exactly one caller once all `count` shards are done with the collection
        `digest` names (it then merges). A changed collection (a video added, replaced or
        removed, a caption changed) has another digest, so its shards merge again."""
        if not all(self._marker(f"done-{i}-of-{count}", digest).exists()
                   for i in range(count)):
            return False
        path = self._marker(f"merging-{count}", digest)
        with reported_write(path, _FIX):
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return False
        return True

    def release_merge(self, count: int, digest: str) -> None:
        """Give a claim back when the merge failed, so a rerun of a shard merges again."""
        self._marker(f"merging-{count}", digest).unlink(missing_ok=True)
