"""The values of a captions file, which someone else wrote, checked before use: the type of
each JSON value, and caption times. A time is seconds from the video's start: a JSON number
(never true/false) or, in a CSV, ASCII decimal text; finite, from 0 to `MAX_SECONDS`, kept to
the millisecond. A mistake is a short problem naming the place; a reader gathers them and
`refuse` turns them into one line naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from crosskd.errors import UserError
from crosskd.untrusted import terminal_safe

#: the latest caption time, in seconds (about 115 days; beyond it a time is a typo).
MAX_SECONDS = 10_000_000
#: stands for a key the object does not have.
MISSING = object()
#: problems quoted in one message.
MAX_SHOWN = 3
_MAX_TIME_CHARS = 32  # '0.30000000000000004' and '1e-05' (Python's own floats) fit
_CSV_SECONDS = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SECONDS = f"a number of seconds from 0 to {MAX_SECONDS}"


def kind(value: Any) -> str:
    """A JSON value's type as the file's author knows it."""
    if value is MISSING:
        return "missing"
    names = {type(None): "null", bool: "true/false", int: "a number", float: "a number",
             str: "a string", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def refuse(path: Path, problems: list[str]) -> None:
    """One line naming the file and its first problems (with how many more there are)."""
    if problems:
        more = len(problems) - MAX_SHOWN
        raise UserError(f"captions file {path}: {'; '.join(problems[:MAX_SHOWN])}"
                        + (f" (and {more} more problem(s))" if more > 0 else ""))


def want(problems: list[str], where: str, value: Any, types: tuple[type, ...],
         what: str) -> bool:
    """Record a problem unless `value` is one of `types` (never a bool for a number)."""
    if isinstance(value, types) and not isinstance(value, bool):
        return True
    problems.append(f"{where} must be {what} (got {kind(value)})")
    return False


def _shown(text: str) -> str:
    """A number as the file wrote it, shortened (a 4000-digit number is not quoted whole)."""
    text = terminal_safe(text)
    return text if len(text) <= 24 else f"{text[:16]}... ({len(text)} characters)"


def seconds(value: Any, where: str) -> float:
    """A JSON time, checked; else a ValueError naming `where`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where} must be {_SECONDS} (got {kind(value)})")
    return _in_range(value, str(value), where)


def csv_seconds(text: str, where: str) -> float:
    """A CSV time (such as `12.5`), checked; else a ValueError naming `where`."""
    text = text.strip()
    if len(text) > _MAX_TIME_CHARS or not _CSV_SECONDS.fullmatch(text):
        raise ValueError(f"{where} {_shown(text)!r} is not {_SECONDS} (ASCII digits and a "
                         "point, such as 12.5)")
    return _in_range(float(text), text, where)


def _in_range(value: float, written: str, where: str) -> float:
    if not 0 <= value <= MAX_SECONDS:  # NaN, infinities and huge whole numbers too
        raise ValueError(f"{where} {_shown(written)} is out of range; use {_SECONDS}")
    return round(float(value), 3)


def moment(start: float, end: float) -> tuple[float, float]:
    """`(start, end)` when the caption lasts (`start < end`); else a ValueError."""
    if not start < end:
        raise ValueError(f"start {start} is not before end {end} (a timed caption lasts from "
                         "its start to its end)")
    return start, end
