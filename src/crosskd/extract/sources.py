"""Which videos to read: a folder (searched recursively) or a list file of paths."""

from __future__ import annotations

from pathlib import Path

from crosskd.errors import UserError

VIDEO_SUFFIXES = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv",
                  ".ts", ".wmv", ".3gp", ".gif", ".ogv"}


def _listed(path: Path) -> list[Path]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(path.parent / line.strip()) for line in lines
            if line.strip() and not line.startswith("#")]


def find_videos(source: Path) -> dict[str, Path]:
    """Video id (the file name without its suffix) -> path; two files of one id are refused."""
    if source.is_dir():
        paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES
                       and p.is_file())
    elif source.is_file():
        paths = _listed(source)
    else:
        raise UserError(f"VIDEOS {source} does not exist; give a folder of videos or a text "
                        "file listing one video path per line")
    found: dict[str, Path] = {}
    for path in paths:
        if path.stem in found:
            raise UserError(f"two videos have the id {path.stem!r} ({found[path.stem]} and "
                            f"{path}); video ids are file names without suffix - rename one")
        found[path.stem] = path
    if not found:
        raise UserError(f"no video found in {source} (suffixes "
                        f"{', '.join(sorted(VIDEO_SUFFIXES))})")
    return found
