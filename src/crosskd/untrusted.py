"""Values that come from files and requests we did not write (configs, dataset records, index
folders, captions, command lines, HTTP requests), made safe once here:

- a path stays inside its root, with symlinks resolved at every level (`contained`);
- an integer is written in ASCII digits (`ascii_int`): Python's `int()` also takes `'²'`'s
  relatives such as `'٣'` and `'１'`, and `str.isdigit()` says yes to `'²'`, which `int()` refuses;
- text shown on a terminal has its control characters escaped (`terminal_safe`), so a stored
  caption cannot set a window title or clear the screen.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path, PurePath
from typing import Any

from crosskd.errors import UserError

_ASCII_INT = re.compile(r"[+-]?[0-9]+")


class UnsafePathError(UserError):
    """A path read from an untrusted file points outside the folder it must stay in."""


def contained(root: str | Path, path: str | PurePath, what: str) -> Path:
    """`path` (relative to `root`, or absolute) resolved, symlinks included at every level,
    and refused unless it lies inside `root` (itself resolved). `what` names the path's
    origin for the message, e.g. "extraction.json entry 'video3' source"."""
    root = Path(root).resolve()
    text = str(path)
    if "\x00" in text:
        raise UnsafePathError(f"{what}: {text!r} holds a NUL character; refused")
    target = (root / path).resolve()
    if target != root and not target.is_relative_to(root):
        raise UnsafePathError(f"{what}: {text!r} points outside {root} (resolved to {target}); "
                              "paths in this file must stay inside that folder")
    return target


def ascii_int(text: str, what: str, low: int | None = None, high: int | None = None) -> int:
    """`text` as an integer if it is ASCII digits (optionally signed) within [low, high];
    otherwise a ValueError naming `what` and the accepted range."""
    stripped = text.strip() if text.isascii() else text
    bounds = (f" from {low} to {high}" if low is not None and high is not None else
              f" of at least {low}" if low is not None else
              f" of at most {high}" if high is not None else "")
    if not _ASCII_INT.fullmatch(stripped):
        raise ValueError(f"{what}: {terminal_safe(text)!r} is not a whole number{bounds} "
                         "(ASCII digits 0-9)")
    value = int(stripped)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{what}: {value} is out of range; use a whole number{bounds}")
    return value


def json_object_file(path: Path, unreadable: str, not_object: str) -> dict[str, Any] | None:
    """The JSON object a file holds (None: there is no file); a UserError naming the file,
    then `unreadable` (after the reason) or `not_object`, when it is no such object."""
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{path} cannot be read ({err}){unreadable}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} {not_object}")
    return value


def terminal_safe(text: str) -> str:
    """`text` with every control or format character (C0, DEL, C1, bidi overrides, zero-width
    marks) written as a visible escape such as `\\x1b` or `\\u202e`; printable text, including
    non-ASCII letters, is kept as it is."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or _is_wide_space(ch) else _escaped(ch)
                   for ch in text)


def _is_wide_space(ch: str) -> bool:
    """Non-ASCII spaces (no-break, ideographic, ...): harmless on a terminal, kept."""
    return ord(ch) > 0x7F and unicodedata.category(ch) == "Zs"


def _escaped(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
