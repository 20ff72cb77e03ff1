"""Videos and thumbnails an index shows: copied into the index folder when it is built, and
found again only through the index's own table, never from a name in a request.

What a media file is gets decided by its first bytes, never by its name: a "video" named
`clip.mp4` that holds HTML or SVG would otherwise run as a page of the server's own origin.
Only the containers and images below are copied or served, each with the type its content
shows. The table is read from the index folder, so each of its names must resolve (symlinks
at every level) to a file directly in the index's own `media/` folder (which files are
copied: crosskd.search.media_sources).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Mapping, NamedTuple

from crosskd.untrusted import UnsafePathError, contained, json_object_file

log = logging.getLogger(__name__)

FOLDER = "media"
TABLE = "media.json"
KINDS = ("video", "thumbnail")
#: leading bytes read to recognise a file (an MPEG transport stream repeats its sync byte
#: every 188 bytes)
HEAD_BYTES = 512
_ASF = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
#: (offset, magic, media type, suffix of the copy): the formats a browser can be sent safely
_SIGNATURES = (
    (0, b"\x1a\x45\xdf\xa3", "video/x-matroska", ".mkv"),
    (0, b"OggS", "video/ogg", ".ogv"),
    (0, b"FLV\x01", "video/x-flv", ".flv"),
    (0, b"\x00\x00\x01\xba", "video/mpeg", ".mpg"),
    (0, b"\x00\x00\x01\xb3", "video/mpeg", ".mpg"),
    (0, _ASF, "video/x-ms-asf", ".wmv"),
    (0, b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (0, b"GIF87a", "image/gif", ".gif"),
    (0, b"GIF89a", "image/gif", ".gif"),
)
_RIFF = {b"AVI ": ("video/x-msvideo", ".avi"), b"WEBP": ("image/webp", ".webp")}


class MediaType(NamedTuple):
    """What a file's content shows it is: its media type and the suffix its copy gets."""

    mime: str
    suffix: str

    def fits(self, kind: str) -> bool:
        """Whether this type may be shown as `kind` (a GIF plays as a video too)."""
        if kind == "thumbnail":
            return self.mime.startswith("image/")
        return self.mime.startswith("video/") or self.mime == "image/gif"


def sniff(head: bytes) -> MediaType | None:
    """The media type of a file beginning with `head`, or None for anything else."""
    if head[4:8] == b"ftyp":
        return _iso_media(head[8:12])
    if head[:4] == b"RIFF" and head[8:12] in _RIFF:
        return MediaType(*_RIFF[head[8:12]])
    if head[:1] == b"\x47" and head[188:189] == b"\x47":
        return MediaType("video/mp2t", ".ts")
    for offset, magic, mime, suffix in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            if mime == "video/x-matroska" and b"webm" in head[:64]:
                return MediaType("video/webm", ".webm")
            return MediaType(mime, suffix)
    return None


def _iso_media(brand: bytes) -> MediaType:
    """An ISO base media file (MP4, MOV, 3GP, AVIF) by its major brand."""
    if brand == b"qt  ":
        return MediaType("video/quicktime", ".mov")
    if brand.startswith(b"3g"):
        return MediaType("video/3gpp", ".3gp")
    if brand in (b"avif", b"avis"):
        return MediaType("image/avif", ".avif")
    return MediaType("video/mp4", ".mp4")


def sniff_file(path: Path) -> MediaType | None:
    """`sniff` of a file's first bytes (None when it cannot be read)."""
    try:
        with open(path, "rb") as file:
            return sniff(file.read(HEAD_BYTES))
    except OSError:
        return None


def attach_media(root: Path, sources: Mapping[str, Mapping[str, Path]]) -> None:
    """Copy (or hard-link) each video's files `{video_id: {"video": path, "thumbnail": path}}`
    into `root/media` under numbered names, and write the table that maps them back. A file
    named by several entries (the source video of a video's segments) is copied once and
    shared. A file whose content is not a video (or, as a thumbnail, an image) is left out
    with a warning."""
    folder = root / FOLDER
    folder.mkdir(exist_ok=True)
    table, refused = {}, []
    copies: dict[tuple[Path, str], str | None] = {}
    for n, (video_id, files) in enumerate(sorted(sources.items())):
        entry = {}
        for kind in KINDS:
            source = Path(files[kind]).resolve() if files.get(kind) else None
            if source is None or not source.is_file():
                continue
            if (source, kind) not in copies:
                copies[source, kind] = _copied(source, kind, folder, f"{n}-{kind}")
                if copies[source, kind] is None:
                    refused.append(f"{video_id} {kind} {source.name}")
            if copies[source, kind] is not None:
                entry[kind] = copies[source, kind]
        if entry:
            table[video_id] = entry
    if refused:
        log.warning("%d media file(s) left out of the index: their content is not a video or "
                    "image the page can show (%s%s)", len(refused), ", ".join(refused[:3]),
                    ", ..." if len(refused) > 3 else "")
    (root / TABLE).write_text(json.dumps(table) + "\n", encoding="utf-8")


def _copied(source: Path, kind: str, folder: Path, stem: str) -> str | None:
    """The name of `source`'s copy in `folder` (`stem` and the suffix its content shows), or
    None when its content is not a `kind` the page can show."""
    found = sniff_file(source)
    if found is None or not found.fits(kind):
        return None
    _link_or_copy(source, folder / f"{stem}{found.suffix}")
    return f"{stem}{found.suffix}"


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class MediaTable:
    """The files of each indexed video that the index folder holds, each checked once."""

    def __init__(self, root: Path | None) -> None:
        self.root = root.resolve() if root else None
        self.folder = self.root / FOLDER if self.root else None
        self.table = _read_table(root / TABLE) if root else {}
        self._found: dict[tuple[str, str], tuple[Path, MediaType] | None] = {}

    def find(self, video_id: str, kind: str) -> tuple[Path, MediaType] | None:
        """The file of `kind` for a video and its type by content, or None: always a file
        directly inside the index's media folder, of a type that fits `kind`."""
        key = (video_id, kind)
        if key not in self._found:
            self._found[key] = self._check(video_id, kind)
        return self._found[key]

    def _check(self, video_id: str, kind: str) -> tuple[Path, MediaType] | None:
        entry = self.table.get(video_id)
        name = entry.get(kind) if isinstance(entry, dict) else None
        if not isinstance(name, str) or self.root is None:
            return None
        try:
            path = contained(self.root, Path(FOLDER) / name,
                             f"{TABLE} entry {video_id!r} {kind}")
        except UnsafePathError as err:
            log.warning("not served: %s", err)
            return None
        if path.parent != self.folder or not path.is_file():
            return None
        found = sniff_file(path)
        if found is None or not found.fits(kind):
            log.warning("not served: %s (%s of video %r) is not a %s by its content",
                        path, kind, video_id, "image" if kind == "thumbnail" else "video")
            return None
        return path, found

    def kinds(self, video_id: str) -> list[str]:
        """Which of video / thumbnail there are for a video."""
        return [kind for kind in KINDS if self.find(video_id, kind) is not None]


def _read_table(path: Path) -> dict:
    """The media table of an index folder ({} when it has none)."""
    return json_object_file(path, "; rebuild the index",
                            "is not a table of video ids; rebuild the index") or {}
