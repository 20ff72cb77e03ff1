"""What one `crosskd extract` run writes: the videos found now, joined with the dataset already
in the output folder.

A video the dataset has keeps its split and its captions (a captions file given now replaces
the captions of the videos it names); one whose file is gone stays, from the result cache,
unless --prune. Captions are optional: a video without any is part of the collection (its
expert files, extraction.json, an index of every video) but of no split, since training and
evaluation need captions.

A segmented collection (`--segment`) keeps each video's timed captions apart from its untimed
ones: the timed ones name its segments, so only a video with timed captions is in a split.
One dataset is cut one way: a run asking for another segmentation than the dataset in the
output folder has (or whole videos for a segmented one) is refused. A whole-video run given
timed captions takes their text as untimed captions.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crosskd.errors import UserError
from crosskd.extract.caption_values import moment, seconds
from crosskd.extract.captions import SPLIT_NAMES, Captions, TimedCaption
from crosskd.extract.segmentation import Segmentation, described
from crosskd.extract.sources import find_source
from crosskd.extract.video_ids import checked_id

log = logging.getLogger(__name__)

RECORD = "extraction.json"
ROOT_FEAT_FOLDER = "high-quality/structured-symlinks"
#: the split lists of a dataset written before own-video layouts (extraction.json format 1,
#: MSRVTT's layout), so that its videos keep their splits when videos are added.
FORMAT_1_LISTS = {"train": "train_list_full.txt", "val": "val_list_full.txt",
                  "test": "test_list_full.txt"}
SHOWN = 3  # video names per line of the changes
#: the extraction.json format of a segmented dataset (crosskd.extract.record).
SEGMENTED_FORMAT = 3


@dataclass
class Recorded:
    """The dataset already in the output folder: its name and each video's entry."""

    name: str | None
    videos: dict[str, dict[str, Any]]
    splits: dict[str, str]
    #: a segmented dataset's segmentation record (None: whole videos) and timed captions.
    segmentation: dict[str, Any] | None = None
    timed: dict[str, list[TimedCaption]] = field(default_factory=dict)


@dataclass
class Collection:
    """What goes into the dataset: its videos, their files, captions, splits, report notes."""

    name: str
    video_ids: list[str]
    #: each video's file, found now or as the dataset recorded it.
    sources: dict[str, Path]
    #: the captioned videos' captions (a segmented collection's: the untimed ones).
    captions: dict[str, list[str]]
    #: a segmented collection's timed captions, per video.
    timed: dict[str, list[TimedCaption]] = field(default_factory=dict)
    #: how its videos are cut (None: whole videos).
    segmentation: Segmentation | None = None
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
    def split_captions(self) -> dict[str, list[Any]]:
        """The captions that put a video in a split: a segmented collection's timed ones."""
        return self.timed if self.segmentation else self.captions

    @property
    def without_captions(self) -> list[str]:
        """Videos of a captioned collection that have no caption (in no split)."""
        held = self.split_captions
        if not held:
            return []
        return [vid for vid in self.video_ids if vid not in held]

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


def listed(ids: list[str], unit: str = "video") -> str:
    """`3 videos ('a', 'b', 'c')`: the count of `unit`s, the first SHOWN names, then `...`."""
    names = ", ".join(repr(vid) for vid in ids[:SHOWN]) + (", ..." if len(ids) > SHOWN else "")
    return f"{len(ids)} {unit}{'' if len(ids) == 1 else 's'}" + (f" ({names})" if ids else "")


def gather(found: dict[str, Path], captions: Captions | None, out: Path, name: str | None,
           prune: bool, segmentation: Segmentation | None = None) -> Collection:
    """The collection this run writes into `out`: the videos `found` (id -> file) and those
    the dataset in `out` already has, with their captions and known splits."""
    recorded = read_recorded(out)
    if recorded is not None:
        _refuse_other_cut(out, recorded, segmentation)
    recorded = recorded or Recorded(None, {}, {})
    sources, gone = _sources(found, recorded.videos, out, prune)
    by_video = {vid: list(entry["captions"]) for vid, entry in recorded.videos.items()
                if vid in sources and entry.get("captions")}
    timed = {vid: moments for vid, moments in recorded.timed.items() if vid in sources}
    given = {vid: split for vid, split in recorded.splits.items() if vid in sources}
    without_video: list[str] = []
    if captions is not None:
        untimed, file_timed = _caption_kinds(captions, segmentation)
        named = [vid for vid in {**untimed, **file_timed} if vid in sources]
        if not named:
            raise UserError(f"no caption of the captions file names a video of the collection "
                            f"(video ids are file names without suffix, e.g. "
                            f"{next(iter(sources))!r})")
        for held, given_now in ((by_video, untimed), (timed, file_timed)):
            held.update({vid: given_now[vid] for vid in named if vid in given_now})
            for vid in named:
                if vid not in given_now:
                    held.pop(vid, None)
        given.update({vid: split for vid, split in captions.splits.items() if vid in sources})
        without_video = sorted(set(untimed).union(file_timed) - set(sources))
    split_captions = timed if segmentation else by_video
    if segmentation is not None and by_video and not timed:
        log.warning("extract: no video has timed captions: with --segment only timed captions "
                    "name segments (the untimed ones stay their video's), so the dataset has "
                    "no split to train on; it can be indexed")
    return Collection(name=name or recorded.name or out.resolve().name,
                      video_ids=sorted(sources), sources=sources, captions=by_video,
                      timed=timed, segmentation=segmentation,
                      given={vid: split for vid, split in given.items() if vid in split_captions},
                      recorded=sorted(recorded.videos), gone=gone,
                      without_video=without_video)


def _caption_kinds(captions: Captions, segmentation: Segmentation | None
                   ) -> tuple[dict[str, list[str]], dict[str, list[TimedCaption]]]:
    """The file's untimed and timed captions; for whole videos every caption untimed (the
    times of timed ones ignored, said once)."""
    if segmentation is not None or not captions.timed:
        return captions.by_video, captions.timed
    count = sum(len(moments) for moments in captions.timed.values())
    log.info("extract: %d timed caption(s) are taken as captions of their whole video (their "
             "times are ignored without --segment)", count)
    untimed = {vid: list(texts) for vid, texts in captions.by_video.items()}
    for vid, moments in captions.timed.items():
        untimed.setdefault(vid, []).extend(moment.text for moment in moments)
    return untimed, {}


def _refuse_other_cut(out: Path, recorded: Recorded, segmentation: Segmentation | None) -> None:
    """One dataset holds one kind of item: refuse a run cut otherwise than the dataset."""
    asked = segmentation.record() if segmentation is not None else None
    if asked != recorded.segmentation:
        raise UserError(f"{out} holds a dataset of {described(recorded.segmentation)}, and "
                        f"this run asks for {described(asked)}; one dataset holds one kind of "
                        "item: choose another --out, or extract with the dataset's own "
                        "segmentation to add videos to it")


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
    segmentation = _recorded_segmentation(path, record, fix)
    timed = {vid: _timed(f"{path} entry {vid!r}", entry, fix)
             for vid, entry in entries.items() if entry.get("timed_captions")}
    return Recorded(name if isinstance(name, str) else None, entries, splits, segmentation,
                    timed)


def _recorded_segmentation(path: Path, record: dict[str, Any], fix: str
                           ) -> dict[str, Any] | None:
    """A segmented dataset's (format 3) segmentation record; None for whole videos."""
    if record.get("format") != SEGMENTED_FORMAT:
        return None
    segmentation = record.get("segmentation")
    if not isinstance(segmentation, dict):
        raise UserError(f"{path}: a segmented dataset (format {SEGMENTED_FORMAT}) without a "
                        f"'segmentation' object; {fix}")
    return segmentation


def _timed(where: str, entry: dict[str, Any], fix: str) -> list[TimedCaption]:
    """A recorded video's timed captions, each checked (a list of {start, end, caption})."""
    rows = entry["timed_captions"]
    if not isinstance(rows, list):
        raise UserError(f"{where}: 'timed_captions' is not a list; {fix}")
    moments = []
    for number, row in enumerate(rows):
        place = f"{where} timed_captions[{number}]"
        if not isinstance(row, dict) or not isinstance(row.get("caption"), str):
            raise UserError(f"{place} is not an object with start, end and a caption string; "
                            f"{fix}")
        try:
            start, end = moment(seconds(row.get("start"), "start"),
                                seconds(row.get("end"), "end"))
        except ValueError as err:
            raise UserError(f"{place}: {err}; {fix}") from None
        moments.append(TimedCaption(start, end, row["caption"]))
    return moments


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
