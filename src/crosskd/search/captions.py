"""The indexed split's captions: their embeddings (queries by reference, video -> text) and
their text (what a result shows), with the text each video's experts read or heard (OCR
lines, speech transcripts of an own-video dataset), shown beside them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from crosskd.errors import UserError
from crosskd.search.query import Hit, Query

if TYPE_CHECKING:
    from crosskd.search.index_files import IndexFolder

FOLDER = "captions"
#: highest caption number accepted from a stored index
MAX_SLOT = 1 << 20
#: what the videos' experts read or heard, {video id: {kind: text}} (own-video datasets)
READ = "read.json"
#: the most characters of one read or heard text kept in an index: a result only shows it
#: (the expert's tokens are what is searched), so a few KB, however long the video
MAX_READ = 2000


class UnknownCaption(UserError):
    """A caption reference the index does not hold."""


@dataclass
class CaptionStore:
    """Caption n: `embeddings[n]` `[E, D]`, `weights[n]` `[E]`, of video `owner[n]` (position),
    caption number `slot[n]`; `texts` the captions of each video id, for display, and `read`
    the text its experts read or heard ({kind: text}, e.g. ocr, speech), when it has any."""

    embeddings: np.ndarray
    weights: np.ndarray
    owner: np.ndarray
    slot: np.ndarray
    texts: dict[str, list[str]] = field(default_factory=dict)
    read: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> "CaptionStore":
        return cls(np.zeros((0, 0, 0), np.float32), np.zeros((0, 0), np.float32),
                   np.zeros(0, np.int64), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.owner)

    def query(self, position: int, video_id: str, slot: int) -> Query:
        """The stored caption `slot` of the video at `position`."""
        found = np.flatnonzero((self.owner == position) & (self.slot == slot))
        if not len(found):
            slots = sorted(int(s) for s in self.slot[self.owner == position])
            raise UnknownCaption(f"video {video_id!r} has no caption {slot} in this index "
                                 f"(its captions: {slots or 'none'})")
        n = int(found[0])
        return Query(np.asarray(self.embeddings[n]), np.asarray(self.weights[n]),
                     f"{video_id}:{slot}")

    def text_of(self, video_ids: Sequence[str], n: int) -> str:
        """The text of caption n (empty when the dataset has no raw captions)."""
        texts = self.texts.get(video_ids[int(self.owner[n])], [])
        slot = int(self.slot[n])
        return texts[slot] if slot < len(texts) else ""

    def rank_for_video(self, masked_video: np.ndarray, availability: np.ndarray, k: int,
                       video_ids: Sequence[str]) -> list[Hit]:
        """The `k` captions the model scores highest for one video (`[1, E, D]` embeddings
        already multiplied by `availability` `[E]`), as the model's v2t scores them."""
        weighted = (self.embeddings * self.weights[..., None]).reshape(len(self), -1)
        numerators = weighted @ masked_video.reshape(-1)
        scores = numerators / (self.weights @ availability)
        order = np.lexsort((np.arange(len(scores)), -scores))[:k]
        hits = []
        for n in order:
            caption = f"{video_ids[int(self.owner[n])]}:{int(self.slot[n])}"
            hits.append(Hit(caption, float(scores[n]), {}, (self.text_of(video_ids, n),)))
        return hits

    def save(self, root: Path) -> None:
        folder = root / FOLDER
        folder.mkdir()
        for name in ("embeddings", "weights", "owner", "slot"):
            np.save(folder / f"{name}.npy", getattr(self, name))
        (folder / "texts.json").write_text(json.dumps(self.texts) + "\n", encoding="utf-8")
        if self.read:
            (folder / READ).write_text(json.dumps(self.read) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: "IndexFolder", video_ids: Sequence[str], experts: int, width: int
             ) -> "CaptionStore":
        """What `save` wrote (the embeddings memory-mapped), checked against the index's
        videos, `experts` and padded `width`; no captions folder, no captions."""
        if not folder.folder(FOLDER):
            return cls.empty()
        owner = folder.array(f"{FOLDER}/owner.npy", "int64", (None,))
        count = len(owner)
        folder.positions(f"{FOLDER}/owner.npy", owner, len(video_ids))
        slot = folder.array(f"{FOLDER}/slot.npy", "int64", (count,))
        folder.positions(f"{FOLDER}/slot.npy", slot, MAX_SLOT)
        if len(np.unique(owner * MAX_SLOT + slot)) != count:
            raise folder.damaged(f"{FOLDER}/slot.npy", "numbers a caption of a video twice")
        shape = (count, experts) if count else (0, None)
        weights = folder.array(f"{FOLDER}/weights.npy", "float32", shape)
        folder.finite(f"{FOLDER}/weights.npy", weights, 0)
        embeddings = folder.array(f"{FOLDER}/embeddings.npy", "float32", shape + (
            width if count else None,), mmap=True)
        return cls(embeddings, weights, owner, slot,
                   _checked_texts(folder, f"{FOLDER}/texts.json", set(video_ids)),
                   _checked_read(folder, f"{FOLDER}/{READ}", set(video_ids)))


def _checked_texts(folder: "IndexFolder", relative: str, video_ids: set[str]
                   ) -> dict[str, list[str]]:
    """texts.json: each indexed video's caption texts, a list of strings."""
    texts: Any = folder.json(relative)
    if not isinstance(texts, dict) or not all(
            key in video_ids and isinstance(value, list)
            and all(isinstance(text, str) for text in value) for key, value in texts.items()):
        raise folder.damaged(relative, "must map indexed video ids to lists of caption texts")
    return texts


def _checked_read(folder: "IndexFolder", relative: str, video_ids: set[str]
                  ) -> dict[str, dict[str, str]]:
    """read.json (optional): each indexed video's read or heard texts, kind -> a string of at
    most MAX_READ characters, so a hostile index cannot make every answer huge."""
    if folder.file(relative, required=False) is None:
        return {}
    read: Any = folder.json(relative)
    if not isinstance(read, dict) or not all(
            key in video_ids and isinstance(value, dict) and all(
                isinstance(kind, str) and isinstance(text, str) and len(text) <= MAX_READ
                for kind, text in value.items()) for key, value in read.items()):
        raise folder.damaged(relative, "must map indexed video ids to objects of texts of at "
                             f"most {MAX_READ} characters")
    return read
