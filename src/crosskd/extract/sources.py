"""Which videos to read (a folder searched recursively, or a list file of paths), and where
a dataset's videos are: recorded relative to the dataset folder and absolute, found again
against wherever the dataset folder is now."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from crosskd.errors import UserError
from crosskd.extract.video_ids import collision_key, file_video_id

#: the keys of an extraction.json video entry that locate its file.
SOURCE_KEYS = ("source", "source_absolute")
VIDEO_SUFFIXES = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv",
                  ".ts", ".wmv", ".3gp", ".gif", ".ogv"}


def _listed(path: Path) -> list[Path]:
    """The paths of a list file, one a line ('#' starts a comment), relative to its folder."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or "not UTF-8 text"
        raise UserError(f"VIDEOS list file {path} cannot be read ({reason}); give a UTF-8 text "
                        "file with one video path per line, or a folder of videos") from None
    # "\n" only: a path may hold other characters str.splitlines() would split at
    lines = (line.rstrip("\r").strip() for line in text.split("\n"))
    return [path.parent / line for line in lines if line and not line.startswith("#")]


def find_videos(source: Path) -> dict[str, Path]:
    """Video id -> path (see crosskd.extract.video_ids for the rule); a file whose name breaks
    the rule, or two files of one id, are refused before anything is extracted."""
    if source.is_dir():
        paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES
                       and p.is_file())
    elif source.is_file():
        paths = _listed(source)
    else:
        raise UserError(f"VIDEOS {source} does not exist; give a folder of videos or a text "
                        "file listing one video path per line")
    found: dict[str, Path] = {}
    keys: dict[str, str] = {}
    for path in paths:
        video_id = file_video_id(path)
        other_id = keys.get(collision_key(video_id))
        if other_id is not None:
            same = (f"the id {video_id!r}" if other_id == video_id else
                    f"the ids {other_id!r} and {video_id!r}, one file name on a disk that "
                    "ignores letter case or Unicode normalisation")
            raise UserError(f"two videos have {same}: {str(found[other_id])!r} and "
                            f"{str(path)!r}; video ids are file names without the suffix - "
                            "rename one")
        found[video_id] = path
        keys[collision_key(video_id)] = video_id
    if not found:
        raise UserError(f"no video found in {source} (suffixes "
                        f"{', '.join(sorted(VIDEO_SUFFIXES))})")
    return found


def recorded_source(path: Path, dataset: Path) -> dict[str, str]:
    """How extraction.json names a video's file: `source` relative to the dataset folder (the
    dataset and its videos may move together), `source_absolute` (the dataset folder may move
    alone). Both come from absolute paths, so the folder extract ran in does not matter."""
    absolute = os.path.abspath(path)
    try:
        relative = Path(os.path.relpath(absolute, os.path.abspath(dataset))).as_posix()
    except ValueError:  # on another drive than the dataset (Windows)
        relative = absolute
    return {"source": relative, "source_absolute": absolute}


def find_source(entry: Mapping[str, Any], dataset: Path, what: str) -> Path | None:
    """The file an extraction.json video entry names, where it is now: `source` against the
    dataset folder as it is now (an absolute one as it is), else `source_absolute`; None when
    neither is a file. `what` names the entry when a value is not a path."""
    for key in SOURCE_KEYS:
        text = entry.get(key)
        if text is None:
            continue
        if not isinstance(text, str) or not text or "\x00" in text:
            raise UserError(f"{what} {key} is {text!r:.80}, not a path; run crosskd extract "
                            "again")
        path = (dataset / text).absolute()
        if path.is_file():
            return path
    return None
