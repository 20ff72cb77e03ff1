"""segments.json: the source video, start and end of each item of a segmented dataset.

`crosskd extract --segment` writes it in the feature folder; its items are segments of
longer videos, and this table is what evaluation (video-level metrics) and indexing read
to map an item back to its video. Whole-video datasets have no such file. The file is
hostile: every entry is type- and range-checked, and a bad one ends in one line naming
the file and the entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import AbstractSet, Any, Mapping, Sequence

import numpy as np

from crosskd.data.errors import DataError
from crosskd.diskwrites import write_text_atomically
from crosskd.untrusted import terminal_safe

SEGMENTS_NAME = "segments.json"
FORMAT = 1
#: the latest time accepted, in seconds (a week: longer than any recording)
MAX_SECONDS = 7 * 24 * 3600.0
_FIX = "run crosskd extract again to write it afresh"


@dataclass(frozen=True)
class Segment:
    """A time window `[start, end)` of one source video, in seconds."""

    video: str
    start: float
    end: float


@dataclass(frozen=True, eq=False)
class SegmentVideos:
    """The source video of each item of a split: `of_item[i]` is the position of item i's
    video in `video_ids` (the split's videos, in the order they first appear)."""

    video_ids: tuple[str, ...]
    of_item: np.ndarray


@dataclass(frozen=True)
class SegmentTable:
    """Every segment of a dataset by segment id, read from `path`."""

    path: Path
    segments: Mapping[str, Segment]

    def videos_of(self, item_ids: Sequence[str]) -> SegmentVideos:
        """The source videos of a split's items; a DataError if one has no entry."""
        missing = [item for item in item_ids if item not in self.segments]
        if missing:
            raise DataError(f"{self.path} has no entry for segment "
                            f"{terminal_safe(missing[0])!r} of the split list ({len(missing)} "
                            f"segment(s) without one); {_FIX}")
        videos = [self.segments[item].video for item in item_ids]
        positions = {video: n for n, video in enumerate(dict.fromkeys(videos))}
        of_item = np.fromiter((positions[video] for video in videos), np.int64, len(videos))
        return SegmentVideos(tuple(positions), of_item)


def read_segments(root: Path, items: AbstractSet[str] | None = None) -> SegmentTable | None:
    """The segments.json of the feature folder `root` (None: a whole-video dataset), each
    entry checked: its id one of the dataset's `items` (when given), its video a video id, its
    start and end numbers with 0 <= start < end <= MAX_SECONDS."""
    path = Path(root) / SEGMENTS_NAME
    if not path.is_file():
        return None
    entries = _segment_entries(path, _parsed(path))
    return SegmentTable(path, {segment_id: _segment(path, segment_id, entry, items)
                               for segment_id, entry in entries.items()})


def write_segments(root: Path, segments: Mapping[str, Segment]) -> Path:
    """Write `segments` as the segments.json of the feature folder `root`."""
    table = {"format": FORMAT,
             "segments": {segment_id: {"video": segment.video, "start": segment.start,
                                       "end": segment.end}
                          for segment_id, segment in segments.items()}}
    return write_text_atomically(Path(root) / SEGMENTS_NAME, json.dumps(table, indent=1) + "\n",
                                 "free disk space and run crosskd extract again")


def _parsed(path: Path) -> Any:
    """The JSON of `path`, a repeated key refused (JSON would keep the last silently)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_unique_keys)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise DataError(f"{path} cannot be read ({terminal_safe(str(err))[:200]}); "
                        f"{_FIX}") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's dict; a ValueError naming a key that appears twice."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"key {terminal_safe(key)!r} appears twice")
        seen.add(key)
    return dict(pairs)


def _segment_entries(path: Path, table: Any) -> dict[str, Any]:
    """The `segments` object of a format-1 table."""
    if not isinstance(table, dict) or table.get("format") != FORMAT:
        found = table.get("format") if isinstance(table, dict) else None
        raise DataError(f"{path} is not a format-{FORMAT} segment table (format "
                        f"{terminal_safe(repr(found))[:40]}); {_FIX}")
    segments = table.get("segments")
    if not isinstance(segments, dict):
        raise DataError(f"{path}: 'segments' is not an object of segment ids; {_FIX}")
    return segments


def _segment(path: Path, segment_id: str, entry: Any, items: AbstractSet[str] | None
             ) -> Segment:
    """One entry checked: a dataset item, a video id, a window of seconds."""
    where = f"{path} entry {terminal_safe(segment_id)!r}"
    if items is not None and segment_id not in items:
        raise DataError(f"{where}: no item of the dataset has this id (its feature files do "
                        f"not list it); {_FIX}")
    if not isinstance(entry, dict):
        raise DataError(f"{where} is not an object with video, start and end; {_FIX}")
    video, start, end = (entry.get(key) for key in ("video", "start", "end"))
    problem = video_id_problem(video) or window_problem(start, end)
    if problem:
        raise DataError(f"{where}: {terminal_safe(problem)}; {_FIX}")
    return Segment(video, float(start), float(end))


def video_id_problem(video: Any) -> str | None:
    """What is wrong with a video id read from a table (None: nothing): it names a file
    without its suffix, so no separator, no `.`/`..`, nothing unprintable."""
    if not isinstance(video, str) or not video or not video.isprintable() or \
            "/" in video or "\\" in video or video in (".", ".."):
        return f"video {video!r:.80} is not a video id (a file name without its suffix)"
    return None


def window_problem(start: Any, end: Any) -> str | None:
    """What is wrong with a segment's start and end (None: 0 <= start < end <= MAX_SECONDS;
    compared, never converted, so NaN, infinities and huge integers are refused alike)."""
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool)
               and 0 <= t <= MAX_SECONDS for t in (start, end)) or not start < end:
        return (f"start {start!r:.40} and end {end!r:.40} must be seconds with "
                f"0 <= start < end <= {MAX_SECONDS:g}")
    return None
