"""What one `crosskd extract` run writes: the videos found now, joined with the dataset already
in the output folder.

A video the dataset has keeps its split and its captions (a captions file given now replaces
the captions of the videos it names); one whose file is gone stays, from the result cache,
unless --prune. Captions are optional: a video without any is part of the collection (its
expert files, extraction.json, an index of every video) but of no split, since training and
evaluation need captions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crosskd.errors import UserError
from crosskd.extract.captions import SPLIT_NAMES, Captions
from crosskd.extract.sources import find_source
from crosskd.extract.video_ids import checked_id

RECORD = "extraction.json"
ROOT_FEAT_FOLDER = "high-quality/structured-symlinks"
#: the split lists of a dataset written before own-video layouts (extraction.json format 1,
#: MSRVTT's layout), so that its videos keep their splits when videos are added.
FORMAT_1_LISTS = {"train": "train_list_full.txt", "val": "val_list_full.txt",
                  "test": "test_list_full.txt"}
SHOWN = 3  # video names per line of the changes


@dataclass
class Recorded:
    """The dataset already in the output folder: its name and each video's entry."""

    name: str | None
    videos: dict[str, dict[str, Any]]
    splits: dict[str, str]


@dataclass
class Collection:
    """What goes into the dataset: its videos, their files, captions, splits, report notes."""

    name: str
    video_ids: list[str]
    #: each video's file, found now or as the dataset recorded it.
    sources: dict[str, Path]
    #: the captioned videos' captions.
    captions: dict[str, list[str]]
    #: splits known before the draw: the dataset's own, or the captions file's split column.
    given: dict[str, str] = field(default_factory=dict)
    #: videos the dataset had before this run.
    recorded: list[str] = field(default_factory=list)
    #: recorded videos kept although their file is gone (their results come from the cache).
    gone: list[str] = field(default_factory=list)
    splits: dict[str, list[str]] = field(default_factory=dict)
    #: videos left out because no expert could read them, with the reason.
    failed: dict[str, str] = field(default_factory=dict)
    without_video: list[str] = field(default_factory=list)

    @property
    def extractable(self) -> list[str]:
        """The videos whose file is there to extract."""
        gone = set(self.gone)
        return [vid for vid in self.video_ids if vid not in gone]

    @property
    def without_captions(self) -> list[str]:
        """Videos of a captioned collection that have no caption (in no split)."""
        if not self.captions:
            return []
        return [vid for vid in self.video_ids if vid not in self.captions]

    def changes(self) -> list[str]:
        """What this run added, kept and removed: one line each, counts and the first names."""
        before, now = set(self.recorded), set(self.video_ids)
        kept = [vid for vid in self.video_ids if vid in before]
        gone = [vid for vid in self.gone if vid in now]
        note = (f"; the files of {listed(gone)} are gone: kept from the cache (--prune "
                "removes them)" if gone else "")
        return [f"added:   {listed([vid for vid in self.video_ids if vid not in before])}",
                f"kept:    {listed(kept)}{note}",
                f"removed: {listed([vid for vid in self.recorded if vid not in now])}"]


def listed(ids: list[str]) -> str:
    """`3 videos ('a', 'b', 'c')`: the count, the first SHOWN names, then `...`."""
    names = ", ".join(repr(vid) for vid in ids[:SHOWN]) + (", ..." if len(ids) > SHOWN else "")
    return f"{len(ids)} video{'' if len(ids) == 1 else 's'}" + (f" ({names})" if ids else "")


def gather(found: dict[str, Path], captions: Captions | None, out: Path, name: str | None,
           prune: bool) -> Collection:
    """The collection this run writes into `out`: the videos `found` (id -> file) and those
    the dataset in `out` already has, with their captions and known splits."""
    recorded = read_recorded(out) or Recorded(None, {}, {})
    sources, gone = _sources(found, recorded.videos, out, prune)
    by_video = {vid: list(entry["captions"]) for vid, entry in recorded.videos.items()
                if vid in sources and entry.get("captions")}
    given = {vid: split for vid, split in recorded.splits.items() if vid in sources}
    without_video: list[str] = []
    if captions is not None:
        named = [vid for vid in captions.by_video if vid in sources]
        if not named:
            raise UserError(f"no caption of the captions file names a video of the collection "
                            f"(video ids are file names without suffix, e.g. "
                            f"{next(iter(sources))!r})")
        by_video.update({vid: captions.by_video[vid] for vid in named})
        given.update({vid: split for vid, split in captions.splits.items() if vid in sources})
        without_video = sorted(set(captions.by_video) - set(sources))
    return Collection(name=name or recorded.name or out.resolve().name,
                      video_ids=sorted(sources), sources=sources, captions=by_video,
                      given={vid: split for vid, split in given.items() if vid in by_video},
                      recorded=sorted(recorded.videos), gone=gone,
                      without_video=without_video)


def _sources(found: dict[str, Path], entries: dict[str, dict[str, Any]], out: Path,
             prune: bool) -> tuple[dict[str, Path], list[str]]:
    """Each video's file: found now, else where the dataset recorded it; and the recorded
    videos whose file is gone that stay (all of them unless `prune`)."""
    sources, gone = dict(found), []
    for video_id, entry in entries.items():
        if video_id in found:
            continue
        path = find_source(entry, out, f"{out / RECORD} entry {video_id!r}")
        last = entry.get("source_absolute") or entry.get("source")
        if path is not None:
            sources[video_id] = path
        elif last and not prune:
            sources[video_id] = (out / last).absolute()
            gone.append(video_id)
    return sources, gone


def read_recorded(out: Path) -> Recorded | None:
    """The dataset `crosskd extract` wrote in `out` before (None: there is none)."""
    path = out / RECORD
    if not path.is_file():
        return None
    fix = f"remove {path} to write the dataset afresh (finished videos stay in the cache)"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UserError(f"{path} cannot be read ({err}); {fix}") from None
    videos = record.get("videos") if isinstance(record, dict) else None
    if not isinstance(videos, dict):
        raise UserError(f"{path} is not an extraction record (no table 'videos'); {fix}")
    entries = {checked_id(vid, f"{path} entry {vid!r}", fix): _entry(path, vid, entry, fix)
               for vid, entry in videos.items()}
    if record.get("format") == 1:
        splits = _listed_splits(out / ROOT_FEAT_FOLDER, entries)
    else:
        splits = {vid: entry["split"] for vid, entry in entries.items() if entry.get("split")}
    name = record.get("name")
    return Recorded(name if isinstance(name, str) else None, entries, splits)


def _entry(path: Path, video_id: str, entry: Any, fix: str) -> dict[str, Any]:
    """A recorded video's entry, its captions and split checked."""
    where = f"{path} entry {video_id!r}"
    if not isinstance(entry, dict):
        raise UserError(f"{where} is not an object; {fix}")
    captions = entry.get("captions", [])
    if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
        raise UserError(f"{where}: 'captions' is not a list of strings; {fix}")
    if entry.get("split") not in (None, *SPLIT_NAMES.values()):
        raise UserError(f"{where}: 'split' is {entry['split']!r:.40}, not train, val or test; "
                        f"{fix}")
    return entry


def _listed_splits(root: Path, entries: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The splits of a format-1 dataset's videos, from its split lists."""
    splits = {}
    for split, name in FORMAT_1_LISTS.items():
        try:
            lines = (root / name).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        splits.update({line.strip(): split for line in lines if line.strip() in entries})
    return splits
