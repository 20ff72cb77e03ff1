"""What an index holds, in words: its collection's name, the split when one was indexed, and
its counts, so that `crosskd index`, `crosskd search`, the page of `crosskd serve` and the
report name it alike: an own collection by its own name ("Holiday 2024"), a published
dataset by its name and split ("MSRVTT full-test"); a segmented collection also counts its
segments ("4 videos of Lectures in 40 segments").

The name comes from the manifest's info, a file we did not write: a field of another type
is left out. The counts are the index's own, so they always agree with what it answers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np

from crosskd.datasets.catalogue import OWN_VIDEOS


@dataclass(frozen=True)
class CollectionInfo:
    """The indexed collection: its name, the split indexed (None: every video), counts (of a
    segmented collection, `segments` is the number of items, which the caption counts are
    of; None for whole videos)."""

    name: str
    split: str | None
    own: bool
    videos: int
    captioned_videos: int
    captions: int
    segments: int | None = None

    @classmethod
    def of(cls, info: Mapping[str, Any], videos: int, caption_owners: np.ndarray,
           segments: int | None = None) -> "CollectionInfo":
        """The collection an index's `info` names, with the index's counts (`caption_owners`:
        the position of each caption's item)."""
        dataset = _text(info.get("dataset"))
        name = _text(info.get("collection")) or dataset or "an unnamed collection"
        return cls(name, _text(info.get("split")), dataset == OWN_VIDEOS.name, int(videos),
                   len(np.unique(np.asarray(caption_owners))), len(caption_owners), segments)

    def title(self) -> str:
        """`Holiday 2024`, `Holiday 2024, split test` or `MSRVTT full-test`."""
        if not self.split:
            return self.name
        return f"{self.name}, split {self.split}" if self.own else f"{self.name} {self.split}"

    def summary(self) -> str:
        """`12 videos of Holiday 2024 (9 with captions, 31 captions)`, or of a segmented
        collection `4 videos of Lectures in 40 segments (30 with captions, 90 captions)`."""
        cut = "" if self.segments is None else f" in {_count(self.segments, 'segment')}"
        return f"{_count(self.videos, 'video')} of {self.title()}{cut} ({self._captions()})"

    def _captions(self) -> str:
        if not self.captions:
            return "no captions"
        items = self.videos if self.segments is None else self.segments
        if self.captioned_videos == items:
            return _count(self.captions, "caption")
        return f"{self.captioned_videos} with captions, {_count(self.captions, 'caption')}"

    def as_json(self) -> dict[str, Any]:
        """What the page reads of the collection (`/healthz`), its summary included
        (`segments` only for a segmented collection)."""
        found = {**asdict(self), "title": self.title(), "summary": self.summary()}
        if self.segments is None:
            del found["segments"]
        return found


def collection_info(name: str, split: str | None, dataset: str, videos: int,
                    caption_owners: np.ndarray, segments: int | None = None
                    ) -> dict[str, Any]:
    """The manifest info that names a collection and records its counts (`segments` only
    for a segmented one)."""
    info = {"dataset": dataset, "collection": name, "split": split}
    counted = CollectionInfo.of(info, videos, caption_owners, segments)
    counts = {"videos": counted.videos, "captioned_videos": counted.captioned_videos,
              "captions": counted.captions}
    if segments is not None:
        counts["segments"] = segments
    return {**info, "counts": counts}


def _text(value: Any) -> str | None:
    """`value` when it is a non-empty one-line string, else None."""
    if isinstance(value, str) and value.strip() and value.isprintable():
        return value
    return None


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
