"""Videos and thumbnails an index shows: copied into the index folder when it is built, and
found again only through the index's own table, never from a name in a request."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Mapping

FOLDER = "media"
TABLE = "media.json"
KINDS = ("video", "thumbnail")


def attach_media(root: Path, sources: Mapping[str, Mapping[str, Path]]) -> None:
    """Copy (or hard-link) each video's files `{video_id: {"video": path, "thumbnail": path}}`
    into `root/media` under numbered names, and write the table that maps them back."""
    folder = root / FOLDER
    folder.mkdir(exist_ok=True)
    table = {}
    for n, (video_id, files) in enumerate(sorted(sources.items())):
        entry = {}
        for kind in KINDS:
            source = files.get(kind)
            if source is None or not Path(source).is_file():
                continue
            name = f"{n}-{kind}{Path(source).suffix.lower()}"
            try:
                os.link(source, folder / name)
            except OSError:
                shutil.copyfile(source, folder / name)
            entry[kind] = name
        if entry:
            table[video_id] = entry
    (root / TABLE).write_text(json.dumps(table) + "\n", encoding="utf-8")


class MediaTable:
    """The files of each indexed video that the index folder holds."""

    def __init__(self, root: Path | None) -> None:
        self.folder = (root / FOLDER).resolve() if root else None
        path = root / TABLE if root else None
        self.table = json.loads(path.read_text(encoding="utf-8")) if path and path.is_file() \
            else {}

    def path(self, video_id: str, kind: str) -> Path | None:
        """The file of `kind` for a video, or None; always inside the index's media folder."""
        name = self.table.get(video_id, {}).get(kind)
        if name is None or self.folder is None:
            return None
        path = (self.folder / name).resolve()
        if path.parent != self.folder or not path.is_file():
            return None
        return path

    def kinds(self, video_id: str) -> list[str]:
        """Which of video / thumbnail there are for a video."""
        return [kind for kind in KINDS if self.path(video_id, kind) is not None]
