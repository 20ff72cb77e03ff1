"""One query in, the JSON answer out: shared by `crosskd search --json` and `/search`, so the
two cannot differ."""

from __future__ import annotations

from typing import Any

import numpy as np

from crosskd.errors import UserError
from crosskd.search.index import Index
from crosskd.search.query import Query
from crosskd.untrusted import terminal_safe

#: the most results one answer holds
MAX_K = 1000


def parse_caption_ref(text: str) -> tuple[str, int]:
    """`VIDEO_ID:INDEX` -> (video id, caption number)."""
    video_id, sep, slot = text.rpartition(":")
    if not sep or not video_id or not (slot.isascii() and slot.isdigit()):
        raise UserError("a caption is named VIDEO_ID:INDEX with INDEX in ASCII digits "
                        f"(e.g. video7:0), not {terminal_safe(text)!r}")
    return video_id, int(slot)


def query_of(index: Index, text: str | None = None, caption: str | None = None,
             features: np.ndarray | None = None) -> Query:
    """The Query named by exactly one of free text, a caption reference or caption features."""
    given = [name for name, value in (("text", text), ("caption", caption),
                                      ("features", features)) if value is not None]
    if len(given) != 1:
        raise UserError("give one query: free text, a caption (VIDEO_ID:INDEX) or caption "
                        f"features{'' if not given else ', not ' + ' and '.join(given)}")
    if caption is not None:
        return index.caption(*parse_caption_ref(caption))
    if features is not None:
        return index.query(features)
    return index.query(text)


def check_answer_k(k: int) -> int:
    """`k` when it is between 1 and MAX_K."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise UserError(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")
    return k


def answer(index: Index, query: Query, k: int, qbnorm: bool = True, per_video: bool = False
           ) -> dict[str, Any]:
    """`{"query": ..., "results": [{"video_id", "score", "contributions", "captions"}, ...]}`,
    best first. From an index with a query bank, ranked by QB-Norm unless `qbnorm` is off,
    the query also says `qbnorm` {beta, bank_size, requested, applied} and each result its
    `normalised_score`. From a segmented index each result also has `segment_id`, `start`
    and `end`, and the query says `per_video` (each video's best segment only)."""
    ranking = index.rank([query], check_answer_k(k), qbnorm, per_video)[0]
    weights = {m: float(w) for m, w in zip(index.modalities, query.weights)}
    described = {"label": query.label, "weights": weights}
    if index.moments is not None:
        described["per_video"] = per_video
    if index.querybank is not None:
        described["qbnorm"] = {"beta": index.querybank.beta, "bank_size": index.querybank.size,
                               "requested": qbnorm, "applied": ranking.normalised}
    return {"query": described, "results": [hit.as_json() for hit in ranking.hits]}


def caption_answer(index: Index, video_id: str, k: int) -> dict[str, Any]:
    """Video -> text: `{"video_id": ..., "results": [{"caption": "VIDEO_ID:INDEX", "score",
    "captions": [text]}, ...]}`, best first."""
    hits = index.search_captions(video_id, check_answer_k(k))
    return {"video_id": video_id,
            "results": [{"caption": h.item_id, "score": h.score, "text": h.captions[0]}
                        for h in hits]}
