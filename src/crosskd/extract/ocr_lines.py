"""Lines of text read frame by frame, merged into what was on screen and when.

A caption, a slide or a news ticker stays for many sampled frames, and OCR reads it a little
differently in each ("BREAKING NEWS", "BREAKlNG NEWS"); counted once per frame it would
swamp the tokens of everything else. A line that reads the same as (or nearly as, by
difflib's ratio) a line of the previous sampled frame continues that line's segment; the
segment keeps the reading of highest confidence and the times of its first and last frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

#: two readings at least this similar (difflib ratio, case and spacing ignored) are one line.
SIMILAR = 0.8


@dataclass
class Line:
    """One line as OCR read it in one frame."""

    text: str
    confidence: float


@dataclass
class Segment:
    """One line on screen from `start` to `end` (times of the first and last frames read)."""

    text: str
    confidence: float
    start: float
    end: float

    def record(self) -> dict[str, Any]:
        """What extraction.json keeps of it."""
        return {"text": self.text, "confidence": round(self.confidence, 3),
                "start": round(self.start, 3), "end": round(self.end, 3)}


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def _continued(on_screen: dict[str, Segment], key: str) -> Segment | None:
    """The segment of the previous frame that this reading continues, if any."""
    if key in on_screen:
        return on_screen[key]
    scored = [(SequenceMatcher(None, key, other).ratio(), other) for other in on_screen]
    best = max(scored, default=(0.0, ""))
    return on_screen[best[1]] if best[0] >= SIMILAR else None


def merge_lines(frames: list[tuple[float, list[Line]]]) -> list[Segment]:
    """Segments in order of appearance from (time, lines read) per sampled frame."""
    segments: list[Segment] = []
    on_screen: dict[str, Segment] = {}
    for time, lines in frames:
        now: dict[str, Segment] = {}
        for line in lines:
            key = _key(line.text)
            segment = _continued(on_screen, key) if key not in now else now[key]
            if segment is None:
                segment = Segment(line.text, line.confidence, time, time)
                segments.append(segment)
            segment.end = time
            if line.confidence > segment.confidence:
                segment.text, segment.confidence = line.text, line.confidence
            now[key] = segment
        on_screen = now
    return segments


def distinct_text(segments: list[Segment]) -> str:
    """Each distinct line once, in order of first appearance, one per line of text: what the
    text encoder turns into the `ocr` tokens (a line shown twice counts once)."""
    seen: dict[str, str] = {}
    for segment in segments:
        seen.setdefault(_key(segment.text), segment.text)
    return "\n".join(seen.values())
