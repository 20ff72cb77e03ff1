"""Caption files in: a CSV with video and caption columns (WebVid's `videoid,name` too),
JSON lines (`{"video": .., "caption": ..}` or `"captions": [..]`), the MSR-VTT annotation
JSON (`sentences` and `videos`), or the ActivityNet Captions JSON (crosskd.extract.
activitynet_captions). Several captions per video; an optional split per video.

A caption may carry times (a moment of its video): CSV `start` and `end` columns, JSON lines
`"start"`/`"end"` beside one `"caption"`, and every ActivityNet caption. Those are `timed`, the
others `by_video`; a CSV row or JSON line gives both times or neither.

Every format is checked before use: the CSV is parsed as RFC 4180 over the whole file (a
quoted field may hold line breaks and doubled quotes), each value has its type checked
(crosskd.extract.caption_values), and a mistake is one line naming the file and the place
(line, or `sentences[12].caption`).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from crosskd.errors import UserError
from crosskd.extract.activitynet_captions import activitynet_moments, is_activitynet
from crosskd.extract.caption_values import (MAX_SHOWN, MISSING, csv_seconds, kind, moment,
                                             refuse, seconds, want)
from crosskd.extract.video_ids import checked_id

VIDEO_KEYS = ("video", "video_id", "videoid", "id", "path", "file")
CAPTION_KEYS = ("caption", "name", "text", "sentence", "description")
START_KEYS = ("start", "start_time", "starttime")
END_KEYS = ("end", "end_time", "endtime")
#: split names the files may use, to ours (train / val / test).
SPLIT_NAMES = {"train": "train", "val": "val", "validate": "val", "validation": "val",
               "test": "test"}
#: the largest CSV field read (csv's own limit, 128 KiB, is below some long descriptions).
MAX_FIELD_BYTES = 4 << 20
#: byte-order marks of the encodings read besides UTF-8 (spreadsheets save UTF-16).
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))
_FORMATS = "a UTF-8 CSV, JSON lines, MSR-VTT or ActivityNet Captions annotation JSON file"
_ID_FIX = ("video ids are file names without the suffix: no control characters, no leading "
           "or trailing spaces, not only dots")
_MSRVTT_SHAPE = (" - the MSR-VTT annotation JSON is an object with 'sentences' "
                 "[{video_id, caption}] and 'videos' [{video_id, split}]")
_TIMES_PAIRED = "give both start and end (seconds) or neither"


@dataclass(frozen=True)
class TimedCaption:
    """A caption of a moment: seconds from the video's start, `start < end`."""

    start: float
    end: float
    text: str


@dataclass
class Captions:
    """Captions per video id (in file order) and the splits the file gives (may be empty):
    `by_video` the untimed ones, `timed` those that carry a start and an end."""

    by_video: dict[str, list[str]] = field(default_factory=dict)
    splits: dict[str, str] = field(default_factory=dict)
    timed: dict[str, list[TimedCaption]] = field(default_factory=dict)

    def texts(self) -> list[str]:
        """Every caption's text, the untimed ones first, each video's in file order."""
        return [*(text for texts in self.by_video.values() for text in texts),
                *(caption.text for timed in self.timed.values() for caption in timed)]

    def add(self, video: str, caption: str, split: str | None, where: str,
            times: tuple[float, float] | None = None) -> None:
        """One caption of `video` (a file name or path: its stem is the id), checked; timed
        when `times` (start, end) are given."""
        if not video:
            raise UserError(f"{where}: needs a video id and a caption string")
        video_id = checked_id(Path(video).stem, where, _ID_FIX)
        if times is None:
            self.by_video.setdefault(video_id, []).append(caption.strip())
        else:
            self.timed.setdefault(video_id, []).append(TimedCaption(*times, caption.strip()))
        if split:
            self.splits[video_id] = split_name(split, where)


def split_name(split: str, where: str) -> str:
    """Our name of a file's split (train / val / test)."""
    if split.lower() not in SPLIT_NAMES:
        raise UserError(f"{where}: split {split!r} is not one of {', '.join(SPLIT_NAMES)}")
    return SPLIT_NAMES[split.lower()]


def _key(row: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    return next((key for key in keys if key in row), None)


@contextlib.contextmanager
def _field_limit(limit: int) -> Iterator[None]:
    """csv's field size limit raised for one read (it is process-wide), then restored."""
    previous = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of every record, RFC 4180 over the whole text."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise UserError(_csv_error(path, start, err)) from None
        yield start, row


def _csv_error(path: Path, line: int, err: csv.Error) -> str:
    where = f"captions file {path} line {line}"
    if "field larger than field limit" in str(err):
        return (f"{where}: a field is longer than {MAX_FIELD_BYTES >> 20} MiB (often a quote "
                "that is never closed); close the quote, or shorten the caption")
    return (f"{where}: not valid CSV ({err}); quote a field holding commas, quotes or line "
            'breaks, and double a quote inside it ("")')


def _read_csv(path: Path, text: str, captions: Captions) -> None:
    with _field_limit(MAX_FIELD_BYTES):
        _read_csv_rows(path, _csv_rows(path, text), captions)


def _read_csv_rows(path: Path, rows: Iterator[tuple[int, list[str]]],
                   captions: Captions) -> None:
    first = next(rows, None)
    names = [name.strip().lower() for name in (first[1] if first else [])]
    header = {name: column for column, name in reversed(list(enumerate(names)))}
    video, caption = _key(header, VIDEO_KEYS), _key(header, CAPTION_KEYS)
    if video is None or caption is None:
        raise UserError(f"captions file {path}: the CSV header needs a video column "
                        f"({'/'.join(VIDEO_KEYS)}) and a caption column ({'/'.join(CAPTION_KEYS)})")
    start, end = _key(header, START_KEYS), _key(header, END_KEYS)
    if (start is None) != (end is None):
        raise UserError(f"captions file {path}: the CSV header has a {start or end} column but "
                        f"no {'end' if end is None else 'start'} column; {_TIMES_PAIRED}")
    columns = (header[video], header[caption], header.get("split"), header.get(start),
               header.get(end))
    for number, row in rows:
        if not any(value.strip() for value in row):
            continue
        video_id, text, split, *times = (row[c] if c is not None and c < len(row) else ""
                                         for c in columns)
        where = f"captions file {path} line {number}"
        captions.add(video_id, text, split.strip(), where, _csv_times(where, *times))


def _csv_times(where: str, start: str, end: str) -> tuple[float, float] | None:
    """A row's (start, end), or None for an untimed row (both cells empty)."""
    if not start.strip() and not end.strip():
        return None
    try:
        if not (start.strip() and end.strip()):
            raise ValueError(f"{'end' if start.strip() else 'start'} is empty; {_TIMES_PAIRED}")
        return moment(csv_seconds(start, "start"), csv_seconds(end, "end"))
    except ValueError as err:
        raise UserError(f"{where}: {err}") from None


def _jsonl_video(problems: list[str], row: dict[str, Any]) -> str | None:
    """The video of a JSON lines object (a string, or a whole number such as WebVid's ids)."""
    key = _key(row, VIDEO_KEYS) or "video"
    value = row.get(key, MISSING)
    if want(problems, key, value, (str, int), "a string (or a whole number)"):
        return str(value)
    return None


def _jsonl_texts(problems: list[str], row: dict[str, Any]) -> list[str]:
    """The captions of a JSON lines object: a `captions` list or one caption string."""
    if "captions" in row:
        texts = row["captions"]
        if not want(problems, "captions", texts, (list,), "a list of strings"):
            return []
        return [text for number, text in enumerate(texts)
                if want(problems, f"captions[{number}]", text, (str,), "a string")]
    key = _key(row, CAPTION_KEYS) or "caption"
    value = row.get(key, MISSING)
    return [value] if want(problems, key, value, (str,), "a string") else []


def _jsonl_times(problems: list[str], row: dict[str, Any]) -> tuple[float, float] | None:
    """The (start, end) of a JSON lines object; None when it gives neither (or both null)."""
    keys = (_key(row, START_KEYS) or "start", _key(row, END_KEYS) or "end")
    start, end = (row.get(key) for key in keys)
    if start is None and end is None:
        return None
    try:
        if start is None or end is None:
            raise ValueError(f"{keys[1] if end is None else keys[0]} is missing or null; "
                             + _TIMES_PAIRED)
        if "captions" in row:
            raise ValueError("times go with one 'caption' per line, not a 'captions' list; give "
                             "each timed caption its own line")
        return moment(seconds(start, keys[0]), seconds(end, keys[1]))
    except ValueError as err:
        problems.append(str(err))
        return None


def _optional_split(problems: list[str], where: str, value: Any) -> str | None:
    if value is None or value is MISSING:
        return None
    return value if want(problems, where, value, (str,), "a string") else None


def _read_jsonl(path: Path, text: str, captions: Captions) -> None:
    # "\n" only: a JSON string may hold U+2028 and others that str.splitlines() splits at
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"captions file {path} line {number}"
        row = _parse_json(line, where, 'each line is one object such as '
                          '{"video": "v1", "caption": "a dog runs"}')
        if not isinstance(row, dict):
            raise UserError(f"{where}: each line must be a JSON object (got {kind(row)})")
        problems: list[str] = []
        video = _jsonl_video(problems, row)
        texts = _jsonl_texts(problems, row)
        split = _optional_split(problems, "split", row.get("split", MISSING))
        times = _jsonl_times(problems, row)
        refuse(path, [f"line {number}: {problem}" for problem in problems])
        for caption in texts:
            captions.add(video or "", caption, split, where, times)


def _parse_json(text: str, where: str, hint: str) -> Any:
    """`text` parsed, or a UserError naming `where` (too deep or huge values included)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{where}: not JSON ({err.msg} at line {err.lineno} column "
                        f"{err.colno}); {hint}") from None
    except (ValueError, RecursionError) as err:  # a number of >4300 digits, deep nesting
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)[:80]
        raise UserError(f"{where}: not usable JSON ({reason}); {hint}") from None


def _sentence_problems(sentences: list[Any]) -> list[str]:
    problems: list[str] = []
    for number, sentence in enumerate(sentences):
        where = f"sentences[{number}]"
        if not want(problems, where, sentence, (dict,), "an object"):
            continue
        for key in ("video_id", "caption"):
            want(problems, f"{where}.{key}", sentence.get(key, MISSING), (str,), "a string")
    return problems


def _video_problems(videos: list[Any]) -> list[str]:
    problems: list[str] = []
    for number, video in enumerate(videos):
        where = f"videos[{number}]"
        if not want(problems, where, video, (dict,), "an object"):
            continue
        want(problems, f"{where}.video_id", video.get("video_id", MISSING), (str,),
             "a string")
        _optional_split(problems, f"{where}.split", video.get("split", MISSING))
    return problems


def _msrvtt_problems(data: dict[str, Any]) -> list[str]:
    """Every value of the annotation JSON this reader uses, checked for its type."""
    problems: list[str] = []
    sentences = data.get("sentences", MISSING)
    if want(problems, "sentences", sentences, (list,), "a list of objects"):
        problems += _sentence_problems(sentences)
    videos = data.get("videos", [])
    if want(problems, "videos", videos, (list,), "a list of objects"):
        problems += _video_problems(videos)
    return problems


def _read_msrvtt(path: Path, data: dict[str, Any], captions: Captions) -> None:
    problems = _msrvtt_problems(data)
    if problems:
        problems[-1] += _MSRVTT_SHAPE if len(problems) <= MAX_SHOWN else ""
    refuse(path, problems)
    for number, sentence in enumerate(data["sentences"]):
        captions.add(sentence["video_id"], sentence["caption"], None,
                     f"captions file {path} sentences[{number}].video_id")
    for number, video in enumerate(data.get("videos", [])):
        video_id, split = Path(video["video_id"]).stem, video.get("split")
        if video_id in captions.by_video and split:
            captions.splits[video_id] = split_name(
                split, f"captions file {path} videos[{number}].split")


def _read_activitynet(path: Path, data: dict[str, Any], captions: Captions) -> None:
    for item in activitynet_moments(path, data):
        captions.add(item.video, item.text, None, f"captions file {path} {item.where}",
                     (item.start, item.end))


def _decoded(path: Path, data: bytes) -> str:
    """The file's text: UTF-8 (a BOM allowed), or UTF-16/32 with their BOM."""
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as err:
        line, name = data[:err.start].count(b"\n") + 1, encoding.removesuffix("-sig").upper()
        raise UserError(f"captions file {path} line {line}: not {name} text (byte "
                        f"0x{data[err.start]:02x}); save it as UTF-8 ({_FORMATS})") from None
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise UserError(f"captions file {path} line {line}: holds a NUL character (UTF-16 "
                        f"without a byte-order mark?); save it as UTF-8 ({_FORMATS})")
    return text


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"captions file {path} not found (--captions)") from None
    except OSError as err:
        raise UserError(f"captions file {path} cannot be read ({err.strerror or err}); give "
                        f"{_FORMATS}") from None
    return _decoded(path, data)


def _whole_json(path: Path, text: str) -> Any:
    """The file as one JSON document when it is one (an annotation JSON); else None."""
    stripped = text.strip()
    if stripped.startswith("["):
        value = _parse_json(text, f"captions file {path}", _FORMATS)
        raise UserError(f"captions file {path}: the file is {kind(value)} in JSON; give "
                        "JSON lines (one object per line), the MSR-VTT annotation JSON (an "
                        "object with 'sentences' and 'videos') or the ActivityNet Captions JSON "
                        "(an object of videos)")
    if not stripped.startswith("{"):
        return None
    lines = [line for line in stripped.split("\n") if line.strip()]
    if len(lines) == 1 and '"sentences"' not in stripped:
        return None  # JSON lines with one line
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None  # JSON lines (or a broken file: its lines are reported one by one)


def read_captions(path: Path) -> Captions:
    """The captions of a file in any of the four formats (told apart by their content)."""
    text = _read_text(path)
    captions = Captions()
    whole = _whole_json(path, text)
    if isinstance(whole, dict) and is_activitynet(whole):
        _read_activitynet(path, whole, captions)
    elif isinstance(whole, dict):
        _read_msrvtt(path, whole, captions)
    elif text.lstrip().startswith("{"):
        _read_jsonl(path, text, captions)
    else:
        _read_csv(path, text, captions)
    if not captions.by_video and not captions.timed:
        raise UserError(f"captions file {path} holds no caption")
    return captions
