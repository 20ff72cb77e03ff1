"""The video id rule. A video's id is its file name without the last suffix; it becomes a line
of the split lists, a key of every pickle, and the name of its cache entry and keyframe, so
an id must survive all of them unchanged. Refused (with the file or caption line named):

- an empty id, or one of dots only (`...mp4`, `..`): no file name can be made of it;
- a path separator (`/`, `\\`): an id read from a dataset record (`../x`) would name a
  cache entry or keyframe outside its folder;
- leading or trailing whitespace: the split lists are read back stripped;
- control characters, line or paragraph separators, format characters other than the
  zero-width (non-)joiner (bidi overrides, zero-width spaces), and undecodable bytes: they
  break a line-per-id list, or show a different name than the one stored;
- more than `MAX_ID_BYTES` bytes of UTF-8: the cache and keyframe files add to the name.

Two videos whose ids differ only in letter case or Unicode normalisation are refused too:
their cache entries and keyframes would be one file on a case-insensitive disk.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from crosskd.errors import UserError

MAX_ID_BYTES = 200
_JOINERS = {"\u200c", "\u200d"}  # needed by Persian, Indic scripts and emoji sequences
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def id_problem(video_id: str) -> str | None:
    """Why `video_id` breaks the rule, in a few words; None when it is a safe id."""
    if not video_id.strip("."):
        return "it is empty or made of dots only"
    if video_id != video_id.strip():
        return "it starts or ends with whitespace"
    if "/" in video_id or "\\" in video_id:
        return "it holds a path separator"
    for ch in video_id:
        if unicodedata.category(ch) in _REFUSED_CATEGORIES and ch not in _JOINERS:
            return ("it holds bytes that are not UTF-8" if unicodedata.category(ch) == "Cs"
                    else f"it holds the control or invisible character {ch!r}")
    if len(video_id.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        return f"it is longer than {MAX_ID_BYTES} bytes"
    return None


def checked_id(video_id: str, where: str, fix: str) -> str:
    """`video_id` when it follows the rule; else a UserError naming `where` and `fix`."""
    problem = id_problem(video_id)
    if problem is not None:
        raise UserError(f"{where}: video id {video_id!r} is refused ({problem}); {fix}")
    return video_id


def file_video_id(path: Path) -> str:
    """The id of a video file (its name without the last suffix), checked."""
    return checked_id(path.stem, f"video file {str(path)!r}",
                      "rename the file (video ids are file names without the suffix: "
                      "no control characters, no leading or trailing spaces, not only dots)")


def collision_key(video_id: str) -> str:
    """Ids equal under this key name one file on a case-insensitive or normalising disk."""
    return unicodedata.normalize("NFC", video_id).casefold()
