"""The retrieval items a dataset's per-item files hold (expert pickles, caption features, raw
captions, split lists): its videos, or, in a segmented dataset, its videos' segments, each
with the timed captions the overlap rule gives it (`crosskd.extract.overlap`).

A segmented dataset's splits are drawn by video (`crosskd.extract.splits`); a split list
names the captioned segments of its videos. A segment without a caption, like a video
without one, is in the dataset (its features, keyframe, segments.json entry) but in no
split list, since training and evaluation need captions; the video's untimed captions stay
the video's and name no segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crosskd.data.segments import Segment as ItemWindow
from crosskd.extract.cache import segment_result
from crosskd.extract.collection import Collection
from crosskd.extract.overlap import assign_captions


@dataclass(frozen=True)
class Items:
    """The items (in file order), their captions and their split lists."""

    ids: list[str]
    captions: dict[str, list[str]]
    splits: dict[str, list[str]] = field(default_factory=dict)
    #: a segmented dataset's segments: each one's video, start and end (None: whole videos).
    windows: dict[str, ItemWindow] | None = None
    #: a segmented dataset's segment ids per video, in time order.
    by_video: dict[str, list[str]] = field(default_factory=dict)
    #: per video, its timed captions that start at or after its end (left out).
    late: dict[str, int] = field(default_factory=dict)

    def result(self, item: str) -> str:
        """The name of the item's result in the extraction cache."""
        return item if self.windows is None else segment_result(self.windows[item].video, item)


def whole_videos(collection: Collection) -> Items:
    """The collection's videos as its items."""
    return Items(list(collection.video_ids), collection.captions, dict(collection.splits))


def segments_of(collection: Collection, tables: dict[str, list[dict]]) -> Items:
    """The segments of every video (`tables`: each video's `{"id", "start", "end"}` in time
    order, as extraction stored them), with the timed captions they are given; no splits."""
    captions, windows, by_video, late = {}, {}, {}, {}
    for video_id in collection.video_ids:
        table = tables[video_id]
        assigned, late_count = assign_captions(collection.timed.get(video_id, []),
                                               [(row["start"], row["end"]) for row in table])
        by_video[video_id] = [row["id"] for row in table]
        for row, texts in zip(table, assigned):
            windows[row["id"]] = ItemWindow(video_id, row["start"], row["end"])
            if texts:
                captions[row["id"]] = texts
        if late_count:
            late[video_id] = late_count
    return Items(list(windows), captions, windows=windows, by_video=by_video, late=late)
