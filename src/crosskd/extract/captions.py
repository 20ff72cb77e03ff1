"""Caption files in: a CSV with video and caption columns (WebVid's `videoid,name` too),
JSON lines (`{"video": .., "caption": ..}` or `"captions": [..]`), or the MSR-VTT annotation
JSON (`sentences` and `videos`). Several captions per video; an optional split per video."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crosskd.errors import UserError

VIDEO_KEYS = ("video", "video_id", "videoid", "id", "path", "file")
CAPTION_KEYS = ("caption", "name", "text", "sentence", "description")
#: split names the files may use, to ours (train / val / test).
SPLIT_NAMES = {"train": "train", "val": "val", "validate": "val", "validation": "val",
               "test": "test"}


@dataclass
class Captions:
    """Captions per video id (in file order) and the splits the file gives (may be empty)."""

    by_video: dict[str, list[str]] = field(default_factory=dict)
    splits: dict[str, str] = field(default_factory=dict)

    def add(self, video: Any, caption: Any, split: Any, where: str) -> None:
        if video in (None, "") or not isinstance(caption, str):
            raise UserError(f"{where}: needs a video id and a caption string")
        video_id = Path(str(video)).stem
        self.by_video.setdefault(video_id, []).append(caption.strip())
        if split not in (None, ""):
            if str(split).lower() not in SPLIT_NAMES:
                raise UserError(f"{where}: split {split!r} is not one of "
                                f"{', '.join(SPLIT_NAMES)}")
            self.splits[video_id] = SPLIT_NAMES[str(split).lower()]


def _key(row: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    return next((key for key in keys if key in row), None)


def _read_csv(path: Path, text: str, captions: Captions) -> None:
    reader = csv.DictReader(text.splitlines())
    header = {name.strip().lower(): name for name in reader.fieldnames or ()}
    video, caption = _key(header, VIDEO_KEYS), _key(header, CAPTION_KEYS)
    if video is None or caption is None:
        raise UserError(f"captions file {path}: the CSV header needs a video column "
                        f"({'/'.join(VIDEO_KEYS)}) and a caption column ({'/'.join(CAPTION_KEYS)})")
    split = header.get("split")
    for number, row in enumerate(reader, 2):
        captions.add(row[header[video]], row[header[caption]], row.get(split) if split else None,
                     f"{path} line {number}")


def _read_jsonl(path: Path, text: str, captions: Captions) -> None:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise UserError(f"{where}: not JSON; each line is one object such as "
                            '{"video": "v1", "caption": "a dog runs"}') from None
        if not isinstance(row, dict):
            raise UserError(f"{where}: each line must be a JSON object")
        texts = row.get("captions", [row.get(_key(row, CAPTION_KEYS) or "caption")])
        for caption in texts if isinstance(texts, list) else [texts]:
            captions.add(row.get(_key(row, VIDEO_KEYS) or "video"), caption, row.get("split"),
                         where)


def _read_msrvtt(path: Path, data: dict[str, Any], captions: Captions) -> None:
    for number, sentence in enumerate(data["sentences"]):
        if not isinstance(sentence, dict):
            raise UserError(f"{path}: sentences[{number}] must be an object")
        captions.add(sentence.get("video_id"), sentence.get("caption"), None,
                     f"{path} sentences[{number}]")
    for video in data.get("videos", []):
        if isinstance(video, dict) and video.get("video_id") in captions.by_video:
            split = str(video.get("split", "")).lower()
            if split in SPLIT_NAMES:
                captions.splits[video["video_id"]] = SPLIT_NAMES[split]


def read_captions(path: Path) -> Captions:
    """The captions of a file in any of the three formats (told apart by their content)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"captions file {path} not found (--captions)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"captions file {path} cannot be read ({type(err).__name__}); give "
                        "a UTF-8 CSV, JSON lines or MSR-VTT annotation JSON file") from None
    captions = Captions()
    stripped = text.lstrip()
    whole = None
    if stripped.startswith("{"):
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None
    if isinstance(whole, dict) and "sentences" in whole:
        _read_msrvtt(path, whole, captions)
    elif stripped.startswith("{"):
        _read_jsonl(path, text, captions)
    else:
        _read_csv(path, text, captions)
    if not captions.by_video:
        raise UserError(f"captions file {path} holds no caption")
    return captions
