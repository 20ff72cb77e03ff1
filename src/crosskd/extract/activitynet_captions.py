"""The ActivityNet Captions JSON as published (its train.json, val_1.json, val_2.json): one
object mapping each video id (`v_` and the YouTube id, kept as is) to the video's `duration`
and its moments, `timestamps` (`[start, end]` seconds) and `sentences` (one per timestamp).

Read as published, with its known flaws: an end past the video's `duration` is taken as the
duration (logged, with a count), and a moment whose start is not before its end (a few are
published so) is left out with a warning naming the first ones. Every other mistake (a value
of another type, a time that is not a finite number from 0, timestamps and sentences of
different lengths) refuses the file in one line naming the place (`v_xxx.timestamps[3]`).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, NamedTuple

from crosskd.extract.caption_values import MAX_SHOWN, MISSING, kind, refuse, seconds, want
from crosskd.untrusted import terminal_safe

log = logging.getLogger(__name__)

_SHAPE = (" - the ActivityNet Captions JSON maps each video id to {duration, timestamps "
          "[[start, end], ...], sentences [...]}")


class Moment(NamedTuple):
    """One timestamped sentence of a video; `where` names its timestamp in messages."""

    video: str
    start: float
    end: float
    text: str
    where: str
    duration: float  # the video's, infinite when the file gives none


def is_activitynet(data: dict[str, Any]) -> bool:
    """Told apart from MSR-VTT's annotation JSON (top-level `sentences` and `videos` lists)
    by its shape: an object per video."""
    return ("sentences" not in data and "videos" not in data
            and any(isinstance(entry, dict) for entry in data.values()))


def activitynet_moments(path: Path, data: dict[str, Any]) -> list[Moment]:
    """Every moment of the file in file order, checked; ends past the duration taken as the
    duration and moments that do not last left out, both logged."""
    problems: list[str] = []
    moments: list[Moment] = []
    for video, entry in data.items():
        moments += _video_moments(problems, video, entry)
    if problems and len(problems) <= MAX_SHOWN:
        problems[-1] += _SHAPE
    refuse(path, problems)
    return _lasting(path, _within(path, moments))


def _video_moments(problems: list[str], video: str, entry: Any) -> list[Moment]:
    place = terminal_safe(video)
    if not want(problems, place, entry, (dict,), "an object with 'timestamps' and 'sentences'"):
        return []
    stamps, sentences = entry.get("timestamps", MISSING), entry.get("sentences", MISSING)
    duration = _duration(problems, place, entry.get("duration", MISSING))
    lists = [want(problems, f"{place}.timestamps", stamps, (list,), "a list of [start, end]"),
             want(problems, f"{place}.sentences", sentences, (list,), "a list of strings")]
    if not all(lists):
        return []
    if len(stamps) != len(sentences):
        problems.append(f"{place} has {len(stamps)} timestamps but {len(sentences)} sentences "
                        "(one sentence per timestamp)")
        return []
    moments = []
    for number, (stamp, sentence) in enumerate(zip(stamps, sentences)):
        where = f"{place}.timestamps[{number}]"
        times = _stamp(problems, where, stamp)
        if want(problems, f"{place}.sentences[{number}]", sentence, (str,), "a string") and times:
            moments.append(Moment(video, *times, sentence, where, duration))
    return moments


def _duration(problems: list[str], place: str, value: Any) -> float:
    """The video's duration (infinite when the file gives none)."""
    if value is MISSING:
        return math.inf
    try:
        return seconds(value, f"{place}.duration")
    except ValueError as err:
        problems.append(str(err))
        return math.inf


def _stamp(problems: list[str], where: str, stamp: Any) -> tuple[float, float] | None:
    if not isinstance(stamp, list) or len(stamp) != 2:
        shape = f"a list of {len(stamp)}" if isinstance(stamp, list) else kind(stamp)
        problems.append(f"{where} must be a pair [start, end] of seconds (got {shape})")
        return None
    try:
        return seconds(stamp[0], f"{where} start"), seconds(stamp[1], f"{where} end")
    except ValueError as err:
        problems.append(str(err))
        return None


def _within(path: Path, moments: list[Moment]) -> list[Moment]:
    """Ends past their video's duration taken as the duration (counted in the log)."""
    late = [moment for moment in moments if moment.end > moment.duration]
    if late:
        log.info("captions file %s: %d caption end(s) past their video's duration taken as the "
                 "duration (e.g. %s end %s, duration %s)", path, len(late), late[0].where,
                 late[0].end, late[0].duration)
    return [moment._replace(end=min(moment.end, moment.duration)) for moment in moments]


def _lasting(path: Path, moments: list[Moment]) -> list[Moment]:
    """The moments whose start is before their end; the others left out with a warning."""
    empty = [moment for moment in moments if not moment.start < moment.end]
    if empty:
        named = ", ".join(f"{moment.where} [{moment.start}, {moment.end}]"
                          for moment in empty[:MAX_SHOWN])
        log.warning("captions file %s: %d caption(s) left out, as their start is not before "
                    "their end (nor before the video's duration): %s%s",
                    path, len(empty), named, " ..." if len(empty) > MAX_SHOWN else "")
    return [moment for moment in moments if moment.start < moment.end]
