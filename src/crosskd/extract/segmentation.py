"""How `crosskd extract --segment` cuts a video into segments, the retrieval items of a
segmented dataset: consecutive windows of a fixed length (`--segment 10`), or the video's
shots (`--segment shots`, `crosskd.extract.shots`) with long shots cut into windows.

Windows never overlap: `[0, S), [S, 2S), ...`, the last one shorter; a last window shorter
than `min(1 s, S / 4)` joins the one before it, so no segment is a sliver. Times are seconds,
rounded to the millisecond. A segment's id is `<video id>@<index>` (index from 0 in time
order, at least 4 digits); ids are never parsed back (segments.json maps them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crosskd.untrusted import terminal_safe

SECONDS, SHOTS = "seconds", "shots"
#: the window lengths `--segment SECONDS` takes: below half a second a segment holds one
#: frame of most experts; above a day it is a whole video.
MIN_SECONDS, MAX_SECONDS = 0.5, 86400.0
#: shots longer than this are cut into windows of it (a long static shot is many moments).
MAX_SHOT_SECONDS = 30.0
#: ContentDetector's threshold (PySceneDetect's default) and the shortest shot it keeps.
SHOT_THRESHOLD = 27.0
MIN_SHOT_SECONDS = 1.0
#: the longest sliver a window split leaves, at most a quarter of the window.
SLIVER_SECONDS = 1.0
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")


@dataclass(frozen=True)
class Segment:
    """One segment of a video: its id and `[start, end)` in seconds of the video."""

    id: str
    start: float
    end: float


@dataclass(frozen=True)
class Segmentation:
    """The cut `--segment` asks for: windows of `seconds`, or shots (cut at `max_seconds`)."""

    mode: str
    seconds: float = 0.0
    threshold: float = SHOT_THRESHOLD
    max_seconds: float = MAX_SHOT_SECONDS

    def record(self) -> dict[str, Any]:
        """What extraction.json and the cache key keep of it."""
        if self.mode == SECONDS:
            return {"mode": SECONDS, "seconds": self.seconds}
        return {"mode": SHOTS, "detector": "scenedetect.ContentDetector",
                "threshold": self.threshold, "min_seconds": MIN_SHOT_SECONDS,
                "max_seconds": self.max_seconds}

    def segments(self, video_id: str, path: Path, duration: float) -> list[Segment]:
        """The segments of a video of `duration` seconds (shots are detected in `path`)."""
        end = round(duration, 3)
        if self.mode == SECONDS:
            bounds = windows(0.0, end, self.seconds)
        else:
            from crosskd.extract.shots import shot_cuts

            cuts = shot_cuts(path, self.threshold, MIN_SHOT_SECONDS)
            bounds = shot_windows(cuts, end, self.max_seconds)
        return [Segment(segment_id(video_id, index), start, stop)
                for index, (start, stop) in enumerate(bounds)]


def parse_segmentation(text: str) -> Segmentation:
    """`--segment`'s value: `shots`, or a window length in seconds (ASCII decimal, from
    MIN_SECONDS to MAX_SECONDS); else a ValueError of one line."""
    value = text.strip()
    if value == SHOTS:
        return Segmentation(SHOTS)
    if not _DECIMAL.fullmatch(value):
        raise ValueError(f"{terminal_safe(text)!r:.60} is neither 'shots' nor a number of "
                         "seconds (ASCII digits, e.g. 10 or 2.5)")
    seconds = float(value)
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise ValueError(f"{value:.20} s is out of range; give a window from {MIN_SECONDS:g} "
                         f"to {MAX_SECONDS:g} seconds, or 'shots'")
    return Segmentation(SECONDS, seconds=round(seconds, 3))


def described(record: Any) -> str:
    """A segmentation record (None: whole videos) in words, with the flag that asks for it;
    the record may come from someone else's extraction.json."""
    mode = record.get("mode") if isinstance(record, dict) else None
    length = record.get("seconds") if isinstance(record, dict) else None
    if record is None:
        return "whole videos (no --segment)"
    if mode == SECONDS and isinstance(length, (int, float)) and not isinstance(length, bool):
        return f"{length:g} s windows (--segment {length:g})"
    if mode == SHOTS:
        return "shots (--segment shots)"
    return f"an unknown segmentation ({terminal_safe(repr(record))[:60]})"


def segment_id(video_id: str, index: int) -> str:
    """`<video id>@<index>`, the index in at least 4 digits."""
    return f"{video_id}@{index:04d}"


def windows(start: float, end: float, length: float) -> list[tuple[float, float]]:
    """`[start, end)` cut into consecutive windows of `length` seconds; a last window
    shorter than min(SLIVER_SECONDS, length / 4) joins the one before it. Computed in
    whole milliseconds, so that every bound is exact."""
    first, last, step = (round(value * 1000) for value in (start, end, length))
    bounds = list(range(first, last, step)) + [last]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < min(SLIVER_SECONDS * 1000, step / 4):
        del bounds[-2]
    return [(a / 1000, b / 1000) for a, b in zip(bounds, bounds[1:])]


def shot_windows(cuts: list[float], end: float, max_seconds: float) -> list[tuple[float, float]]:
    """Shots between the `cuts` (seconds; those not inside `(0, end)`, or less than
    MIN_SHOT_SECONDS after the one before or before the end, are dropped), each longer than
    `max_seconds` cut into windows."""
    bounds = [0.0]
    for cut in sorted(round(c, 3) for c in cuts):
        if bounds[-1] + MIN_SHOT_SECONDS <= cut <= end - MIN_SHOT_SECONDS:
            bounds.append(cut)
    bounds.append(end)
    return [window for start, stop in zip(bounds, bounds[1:])
            for window in windows(start, stop, max_seconds)]
