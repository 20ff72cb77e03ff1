"""Which segments a timed caption belongs to: every segment whose overlap with the caption is
at least half the shorter of the two (the caption first cut at the video's end).

A caption inside one segment belongs to it; one across a cut belongs to each side it half
fills, so at least one (the two parts of a caption split in two add up to it); a segment
inside a long caption belongs to it. A caption that starts at or after the video's end
belongs to none (the dataset's report counts it). Times are compared in whole milliseconds
(both sides are kept to the millisecond), so no rounding decides a tie.
"""

from __future__ import annotations

from typing import Sequence

from crosskd.extract.captions import TimedCaption


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def caption_segments(start: float, end: float,
                     segments: Sequence[tuple[float, float]]) -> list[int]:
    """The positions of the `segments` (consecutive `(start, end)` windows from the video's
    start to its end) that the caption `[start, end)` belongs to."""
    if not segments:
        return []
    first, last = _ms(start), min(_ms(end), _ms(segments[-1][1]))
    chosen = []
    for position, (seg_start, seg_end) in enumerate(segments):
        a, b = _ms(seg_start), _ms(seg_end)
        overlap = min(last, b) - max(first, a)
        if overlap > 0 and 2 * overlap >= min(last - first, b - a):
            chosen.append(position)
    return chosen


def assign_captions(captions: Sequence[TimedCaption], segments: Sequence[tuple[float, float]]
                    ) -> tuple[list[list[str]], int]:
    """Each segment's captions (in the captions' order), and how many captions lie after
    the video's end."""
    assigned: list[list[str]] = [[] for _ in segments]
    late = 0
    for caption in captions:
        positions = caption_segments(caption.start, caption.end, segments)
        late += not positions
        for position in positions:
            assigned[position].append(caption.text)
    return assigned, late
