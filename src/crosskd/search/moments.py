"""Moments: where in its source video each item of a segmented index lies.

A segmented own-video dataset (`crosskd extract --segment`) retrieves segments, and its
`segments.json` (in the feature folder) maps each segment id to its video, start and end in
seconds. An index of it keeps the same for its items (`moments.json`), so that a hit names its
video and time range and a search can keep each video's best segment only. Both files come
from elsewhere: every value is type- and range-checked, and the index's table must name
exactly its items. A whole-video dataset has neither file; its index answers as before.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from crosskd.data.segments import read_segments, video_id_problem, window_problem

if TYPE_CHECKING:
    from crosskd.search.index_files import IndexFolder

#: an index's table of its items' moments
MOMENTS = "moments.json"
FORMAT = 1
#: (scores, positions) of one query's hits, best first
Found = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Moment:
    """Where an item lies: its source video and `[start, end)` in seconds."""

    video_id: str
    start: float
    end: float

    def clock(self) -> str:
        """`mm:ss-mm:ss` (`h:mm:ss` past an hour), widened to whole seconds."""
        return f"{clock(self.start)}-{clock(self.end, up=True)}"


def clock(seconds: float, up: bool = False) -> str:
    """`seconds` as `mm:ss`, or `h:mm:ss` from an hour on; rounded down (`up`: up)."""
    whole = math.ceil(round(seconds, 3)) if up else math.floor(round(seconds, 3))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


@dataclass(frozen=True)
class Moments:
    """Item i lies in video `videos[video[i]]` from `start[i]` to `end[i]` seconds."""

    videos: tuple[str, ...]
    video: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return len(self.video)

    def moment(self, position: int) -> Moment:
        return Moment(self.videos[self.video[position]], float(self.start[position]),
                      float(self.end[position]))

    @classmethod
    def of(cls, table: Sequence[tuple[str, float, float]]) -> "Moments":
        """The moments of items given as (video, start, end), in item order; videos are
        numbered in the order their first item comes."""
        numbers: dict[str, int] = {}
        video = [numbers.setdefault(name, len(numbers)) for name, _, _ in table]
        return cls(tuple(numbers), np.array(video, np.int64),
                   np.array([s for _, s, _ in table], np.float64),
                   np.array([e for _, _, e in table], np.float64))

    def first_of(self, video_id: str) -> int | None:
        """The position of a video's first item (None: no item is of that video)."""
        if video_id not in self.videos:
            return None
        return int(np.argmax(self.video == self.videos.index(video_id)))

    def first_per_video(self, positions: np.ndarray) -> np.ndarray:
        """Indices into the ranking `positions` of each video's first item, in rank order."""
        _, first = np.unique(self.video[positions], return_index=True)
        return np.sort(first)

    def best_per_video(self, top: Callable[[np.ndarray, int], list[Found]], queries: int,
                       k: int) -> list[Found]:
        """Per query, its best item of each of the `k` best videos: the full ranking with
        every video's later items left out. `top(rows, depth)` gives the best `depth` items
        of the queries at `rows`, first as many as k videos hold on average; the depth
        doubles until a query's prefix holds `k` videos or every item, so the answer is
        exact."""
        k = min(k, len(self.videos))
        found: list[Found | None] = [None] * queries
        per_video = -(-len(self) // len(self.videos))
        pending, depth = np.arange(queries), min(len(self), k * per_video)
        while len(pending):
            waiting = []
            for row, (scores, positions) in zip(pending, top(pending, depth)):
                kept = self.first_per_video(positions)[:k]
                if len(kept) == k or depth >= len(self):
                    found[row] = (scores[kept], positions[kept])
                else:
                    waiting.append(row)
            pending, depth = np.array(waiting, np.int64), min(2 * depth, len(self))
        return found

    def save(self, root: Path, item_ids: Sequence[str]) -> None:
        """moments.json: the items (the manifest's ids, in its order) and their moments."""
        table = {"format": FORMAT, "items": list(item_ids), "videos": list(self.videos),
                 "video": self.video.tolist(), "start": self.start.tolist(),
                 "end": self.end.tolist()}
        (root / MOMENTS).write_text(json.dumps(table) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: "IndexFolder", item_ids: Sequence[str]) -> "Moments | None":
        """The index's moments.json, checked (None: a whole-video index)."""
        if folder.file(MOMENTS, required=False) is None:
            return None
        raw = folder.json(MOMENTS)
        if not isinstance(raw, dict) or raw.get("format") != FORMAT or \
                isinstance(raw.get("format"), bool):
            raise folder.damaged(MOMENTS, f"is not a table of moments of format {FORMAT}")
        if raw.get("items") != list(item_ids):
            raise folder.damaged(MOMENTS, "does not list the manifest's video_ids as its items")
        videos = raw.get("videos")
        if not isinstance(videos, list) or \
                not all(video_id_problem(v) is None for v in videos) or \
                len(set(videos)) != len(videos):
            raise folder.damaged(MOMENTS, "'videos' must be distinct video ids")
        columns = [raw.get(key) for key in ("video", "start", "end")]
        if not all(isinstance(c, list) and len(c) == len(item_ids) for c in columns):
            raise folder.damaged(MOMENTS, f"'video', 'start' and 'end' must list "
                                 f"{len(item_ids)} values, one per item")
        for item, number, start, end in zip(item_ids, *columns):
            problem = _number_problem(number, len(videos)) or window_problem(start, end)
            if problem:
                raise folder.damaged(MOMENTS, f"item {item!r}: {problem}")
        moments = cls(tuple(videos), *(np.array(c, dtype) for c, dtype in
                                       zip(columns, (np.int64, np.float64, np.float64))))
        if len(np.unique(moments.video)) != len(videos):
            raise folder.damaged(MOMENTS, "lists a video that holds no item")
        return moments


def dataset_moments(root: Path, item_ids: Sequence[str]) -> Moments | None:
    """The moments of `item_ids` from a segmented dataset's segments.json in its feature
    folder `root` (None for a whole-video dataset, which has none), read and checked by
    crosskd.data.segments (an index may hold some of the dataset's items: one split)."""
    table = read_segments(root)
    if table is None:
        return None
    table.videos_of(item_ids)  # refuses an item without an entry
    return Moments.of([(segment.video, segment.start, segment.end)
                       for segment in map(table.segments.__getitem__, item_ids)])


def _number_problem(number: Any, videos: int) -> str | None:
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < videos:
        return f"video {number!r:.40} is not a number from 0 to {videos - 1}"
    return None
