"""Which media files an index copies: each video's file and keyframe, as the dataset's
extraction.json names them; of a segmented dataset, each source video's file once and each
segment's own keyframe (its entry in its video's `segments`).

A video's file is where the extraction side finds it again (crosskd.extract.sources:
relative to the dataset folder as it is now, then absolute), else a file of its name in a
--media-root folder, else the copy the index being updated holds; the videos found nowhere
are named in one warning that says how to point at them. The record may come from someone
else, so a file it names is taken only from inside the dataset folder (keyframes) or it and
the media roots (videos).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from crosskd.errors import UserError
from crosskd.extract.sources import SOURCE_KEYS, find_source, find_videos
from crosskd.search.media import MediaTable
from crosskd.search.moments import Moments
from crosskd.untrusted import UnsafePathError, contained, terminal_safe

log = logging.getLogger(__name__)

RECORD = "extraction.json"
#: what a refused video source adds: a dataset made here records the user's own video paths
ALLOW_ROOT = "; if these are your own videos, allow their folder with --media-root FOLDER"
#: video names a warning lists
SHOWN = 3


def record_entries(record: Mapping[str, Any], data_dir: Path, item_ids: Sequence[str],
                   moments: Moments | None = None
                   ) -> dict[str, tuple[str, Mapping[str, Any], Mapping[str, Any]]]:
    """Each item's (video id, its video's entry, its own entry) in the extraction record: a
    whole video's own entry is its video's; a segment's is its entry in its video's
    `segments` (an empty one where the record lacks it). Items without a video entry are
    left out."""
    videos = record.get("videos") or {}
    if not isinstance(videos, dict):
        raise UserError(f"{data_dir / RECORD}: 'videos' is not a table of video ids; run "
                        "crosskd extract again")
    found, segments = {}, {}
    for position, item in enumerate(item_ids):
        video_id = item if moments is None else moments.moment(position).video_id
        entry = videos.get(video_id)
        if not isinstance(entry, dict):
            continue
        if moments is None:
            found[item] = (video_id, entry, entry)
            continue
        if video_id not in segments:
            segments[video_id] = _segment_entries(entry)
        found[item] = (video_id, entry, segments[video_id].get(item, {}))
    return found


def _segment_entries(entry: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """A video entry's segment entries by segment id (what is not one is left out)."""
    listed = entry.get("segments")
    if not isinstance(listed, list):
        return {}
    return {s["id"]: s for s in listed if isinstance(s, dict) and isinstance(s.get("id"), str)}


def media_sources(record: Mapping[str, Any], data_dir: Path, item_ids: Sequence[str],
                  media_roots: Sequence[Path] = (), previous: MediaTable | None = None,
                  moments: Moments | None = None) -> dict[str, dict[str, Path]]:
    """Each item's video file and keyframe to copy into an index (a segment's video is its
    source video's file), found as the module docstring says; the videos whose file is
    found nowhere are named in one warning."""
    finder = _Finder(data_dir, tuple(media_roots), previous)
    sources = {}
    for item, (video_id, entry, own) in record_entries(record, data_dir, item_ids,
                                                       moments).items():
        files = finder.files(item, video_id, entry, own)
        if files:
            sources[item] = files
    finder.warn_missing(len(item_ids) if moments is None else len(moments.videos))
    return sources


class _Finder:
    """The files of extraction record entries, and the videos whose file is found nowhere."""

    def __init__(self, data_dir: Path, media_roots: tuple[Path, ...],
                 previous: MediaTable | None) -> None:
        self.data_dir = data_dir
        self.media_roots = media_roots
        self.previous = previous
        #: the videos whose file is found nowhere, in the order met
        self.missing: dict[str, None] = {}
        self._in_roots: dict[str, Path] | None = None
        #: each source video's file, looked for once however many segments it has
        self._videos: dict[str, Path | None] = {}

    def files(self, item: str, video_id: str, entry: Mapping[str, Any],
              own: Mapping[str, Any]) -> dict[str, Path]:
        """{"video": path, "thumbnail": path} of one item (of video `video_id`, whose record
        entry is `entry`; `own` is the item's entry, with its keyframe), as far as found."""
        what = f"{self.data_dir / RECORD} entry {video_id!r}"
        if video_id not in self._videos:
            self._videos[video_id] = self._video(video_id, entry, what)
        found = {"video": self._videos[video_id],
                 "thumbnail": self._thumbnail(own, what if own is entry else
                                              f"{what} segment {item!r}")}
        for kind, path in found.items():
            copy = self.previous.find(item, kind) if path is None and self.previous else None
            found[kind] = copy[0] if copy else path
        if found["video"] is None and any(entry.get(key) for key in SOURCE_KEYS):
            self.missing[video_id] = None
        return {kind: path for kind, path in found.items() if path is not None}

    def _video(self, video_id: str, entry: Mapping[str, Any], what: str) -> Path | None:
        """Where the extraction side finds the file now, else a file of the video's name in
        a media root; only from the dataset folder or a media root."""
        path = find_source(entry, self.data_dir, what)
        named = _recorded_as(entry, self.data_dir, path) if path else None
        path = path or self._videos_in_roots().get(video_id)
        if path is None:
            return None
        return _allowed(path, named or str(path), (self.data_dir, *self.media_roots),
                        f"{what} source", ALLOW_ROOT)

    def _thumbnail(self, entry: Mapping[str, Any], what: str) -> Path | None:
        keyframe = entry.get("keyframe")
        text = keyframe.get("file") if isinstance(keyframe, dict) else None
        if text is None:
            return None
        if not isinstance(text, str):
            raise UserError(f"{what} keyframe file is {text!r:.80}, not a path; run crosskd "
                            "extract again")
        path = (self.data_dir / text).absolute()
        return _allowed(path, text, (self.data_dir,), f"{what} keyframe file", "") \
            if path.is_file() else None

    def _videos_in_roots(self) -> dict[str, Path]:
        """Every video below the media roots by id (its file name without suffix), read on
        first use; the first root holding an id wins."""
        if self._in_roots is None:
            self._in_roots = {}
            for root in reversed(self.media_roots):
                if root.is_dir():
                    try:
                        self._in_roots.update(find_videos(root))
                    except UserError as err:
                        raise UserError(f"--media-root {root}: {err}") from None
        return self._in_roots

    def warn_missing(self, total: int) -> None:
        """One line naming the videos found nowhere, and how to point at them."""
        if not self.missing:
            return
        names = ", ".join(repr(v) for v in list(self.missing)[:SHOWN])
        log.warning("%s", terminal_safe(
            f"{len(self.missing)} of {total} videos cannot be found where {self.data_dir / RECORD}"
            f" records them ({names}{', ...' if len(self.missing) > SHOWN else ''}): the index "
            "shows them without their video, by thumbnail only; if they moved, give the "
            "folder that holds them now with --media-root FOLDER (found there by file name)"))


def _recorded_as(entry: Mapping[str, Any], data_dir: Path, path: Path) -> str:
    """The record's text naming the file `path` that the extraction side found."""
    return next(entry[key] for key in SOURCE_KEYS
                if entry.get(key) and (data_dir / entry[key]).absolute() == path)


def _allowed(path: Path, named: str, roots: Sequence[Path], what: str, advice: str) -> Path:
    """`path` (`named` so in the record) resolved, when it lies inside one of `roots`;
    refused otherwise."""
    for root in roots:
        try:
            return contained(root, path, what)
        except UnsafePathError:
            continue
    inside = " or ".join(str(Path(root).resolve()) for root in roots)
    raise UnsafePathError(terminal_safe(
        f"{what}: {named!r} resolves to {path.resolve()}, outside {inside}; crosskd index "
        f"copies no media from elsewhere{advice}"))
