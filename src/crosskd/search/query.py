"""A query as the index sees it: one caption embedded once per expert, with its weights."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    times its similarity, so the contributions add up to `score`.
    """

    item_id: str
    score: float
    contributions: dict[str, float]
    captions: tuple[str, ...] = ()
    #: QB-Norm's exp(beta score) / Z_v, for an index with a query bank
    normalised: float | None = None
    #: what the video's experts read or heard, kind -> text (own-video datasets that have it)
    read: dict[str, str] | None = None

    def as_json(self, key: str = "video_id") -> dict:
        """The JSON object of `crosskd search --json` and of `/search` (with
        `normalised_score` only from an index with a query bank, `read` only for a video
        whose experts read or heard text)."""
        found = {key: self.item_id, "score": self.score, "contributions": self.contributions,
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
