"""A query as the index sees it: one caption embedded once per expert, with its weights."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crosskd.search.moments import Moment


@dataclass(frozen=True)
class Query:
    """`embeddings` `[E, D]` (the model's text embedding per expert, zero-padded as the model
    pads), `weights` `[E]` (its mixture weights); `label` says where it came from."""

    embeddings: np.ndarray
    weights: np.ndarray
    label: str = ""


@dataclass(frozen=True)
class Hit:
    """One retrieved item: its id, the model's score and each expert's share of it.

    `contributions[e]` = w_e a_e <t_e, v_e> / sum_f w_f a_f, the expert's renormalised weight
    times its similarity, so the contributions add up to `score`. An item of a segmented
    index is a segment: `moment` says which video it is part of and when.
    """

    item_id: str
    score: float
    contributions: dict[str, float]
    captions: tuple[str, ...] = ()
    #: QB-Norm's exp(beta score) / Z_v, for an index with a query bank
    normalised: float | None = None
    #: what the video's experts read or heard, kind -> text (own-video datasets that have it)
    read: dict[str, str] | None = None
    #: the segment's video, start and end (a segmented index), None for a whole video
    moment: Moment | None = None

    @property
    def video_id(self) -> str:
        """The source video: the item itself, or a segment's video."""
        return self.item_id if self.moment is None else self.moment.video_id

    def as_json(self) -> dict:
        """The JSON object of `crosskd search --json` and of `/search` (with
        `normalised_score` only from an index with a query bank, `read` only for a video
        whose experts read or heard text, `segment_id`, `start` and `end` only from a
        segmented index)."""
        found = {"video_id": self.video_id, **moment_json(self.item_id, self.moment),
                 "score": self.score, "contributions": self.contributions,
                 "captions": list(self.captions)}
        if self.normalised is not None:
            found["normalised_score"] = self.normalised
        if self.read:
            found["read"] = dict(self.read)
        return found


@dataclass(frozen=True)
class Ranking:
    """One query's hits, best first, and whether QB-Norm ranked them."""

    hits: list[Hit]
    normalised: bool = False


def moment_json(item_id: str, moment: Moment | None) -> dict:
    """`segment_id`, `start` and `end` of a segment; nothing for a whole video."""
    if moment is None:
        return {}
    return {"segment_id": item_id, "start": moment.start, "end": moment.end}
