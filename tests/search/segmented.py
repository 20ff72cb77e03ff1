"""A segmented own collection for the search tests, made by hand: long videos made of parts
(each part a synthetic scene of PART_SECONDS); each part is also written as a clip named by its
segment id (`lecture0@0000`, ...) and extracted with the demo experts, and the dataset is then
given the files a segmented extraction writes: segments.json in the feature folder and
extraction.json format 3 (each video's `segments`). So these tests do not depend on
`crosskd extract --segment`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from crosskd.extract.synthetic_videos import frames, scenes, soundtrack, write_video
from own_videos import extract, write_captions

FPS = 8
PART_SECONDS = 2.0
#: each long video's parts, as scene numbers
VIDEOS = {"lecture0": (0, 1, 2), "lecture1": (3, 4), "lecture2": (5, 6, 7, 8)}
#: the parts extracted without captions (indexed, in no split)
UNCAPTIONED = ("lecture2@0003",)
SPLITS = {"train": "lecture0", "val": "lecture1", "test": "lecture2"}
FEATURES = Path("high-quality/structured-symlinks")
NAME = "Lectures"


def segment_ids(video_id: str, parts: int) -> list[str]:
    return [f"{video_id}@{n:04d}" for n in range(parts)]


def write_long_videos(folder: Path, videos: dict[str, tuple[int, ...]] = VIDEOS) -> None:
    """Each long video (its parts one after another) in `folder`, and each part as a clip of
    its own in `folder`/parts named by its segment id."""
    drawn = scenes(1 + max(n for parts in videos.values() for n in parts))
    count = int(PART_SECONDS * FPS)
    (folder / "parts").mkdir(parents=True, exist_ok=True)
    for video_id, parts in videos.items():
        shown = [drawn[n] for n in parts]
        write_video(folder / f"{video_id}.mp4",
                    np.concatenate([frames(s, 48, 32, count) for s in shown]), FPS,
                    np.concatenate([soundtrack(s, PART_SECONDS) for s in shown]))
        for segment, scene in zip(segment_ids(video_id, len(parts)), shown):
            write_video(folder / "parts" / f"{segment}.mp4", frames(scene, 48, 32, count), FPS,
                        soundtrack(scene, PART_SECONDS))


def part_captions(videos: dict[str, tuple[int, ...]] = VIDEOS) -> dict[str, list[str]]:
    """Each captioned segment's captions (those of the scene it shows)."""
    drawn = scenes(1 + max(n for parts in videos.values() for n in parts))
    return {segment: drawn[n].captions() for video_id, parts in videos.items()
            for segment, n in zip(segment_ids(video_id, len(parts)), parts)
            if segment not in UNCAPTIONED}


def make_segmented(videos_folder: Path, data: Path, work: Path,
                   videos: dict[str, tuple[int, ...]] = VIDEOS) -> None:
    """Extract the parts under `videos_folder`/parts into `data` (afresh: the extraction
    would refuse to add whole videos to the segmented dataset there) and turn it into the
    segmented dataset of the long videos in `videos_folder`."""
    captions = part_captions(videos)
    parts = work / "parts"
    shutil.rmtree(parts, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(videos_folder / "parts", parts)
    # an item is named by its clip's file, a segment id: the long videos are named only by
    # the records written below
    extract(parts, data, "--captions", str(write_captions(work / "captions.jsonl", captions)),
            "--name", NAME)
    _write_split_lists(data / FEATURES, videos, captions)
    _write_records(data, videos_folder, videos, captions)


def _write_split_lists(root: Path, videos: dict[str, tuple[int, ...]],
                       captions: dict[str, list[str]]) -> None:
    """Splits by video: all of a video's captioned segments in its video's split."""
    for split, video_id in SPLITS.items():
        listed = [s for s in segment_ids(video_id, len(videos.get(video_id, ())))
                  if s in captions]
        (root / f"{split}_list.txt").write_text("".join(f"{s}\n" for s in listed))


def _write_records(data: Path, videos_folder: Path, videos: dict[str, tuple[int, ...]],
                   captions: dict[str, list[str]]) -> None:
    """segments.json and extraction.json (format 3) of the segmented collection."""
    record = json.loads((data / "extraction.json").read_text(encoding="utf-8"))
    parts = record["videos"]
    table, entries = {}, {}
    split_of = {video_id: split for split, video_id in SPLITS.items()}
    for video_id, scene_numbers in videos.items():
        segments = []
        for n, segment in enumerate(segment_ids(video_id, len(scene_numbers))):
            start, end = n * PART_SECONDS, (n + 1) * PART_SECONDS
            table[segment] = {"video": video_id, "start": start, "end": end}
            part = parts[segment]
            segments.append({"id": segment, "start": start, "end": end,
                             "keyframe": part["keyframe"], "missing": part["missing"],
                             "texts": part["texts"], "captions": captions.get(segment, [])})
        source = videos_folder / f"{video_id}.mp4"
        entries[video_id] = {
            "source": str(Path("..") / source.relative_to(videos_folder.parent)),
            "source_absolute": str(source), "split": split_of.get(video_id), "captions": [],
            "duration": len(scene_numbers) * PART_SECONDS, "keyframe": segments[0]["keyframe"],
            "missing": [], "texts": {}, "segments": segments,
            "timed_captions": [{"start": s["start"], "end": s["end"], "caption": c}
                               for s in segments for c in s["captions"]]}
    record.update(format=3, videos=entries,
                  segmentation={"mode": "seconds", "seconds": PART_SECONDS})
    (data / "extraction.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    (data / FEATURES / "segments.json").write_text(
        json.dumps({"format": 1, "segments": table}), encoding="utf-8")

