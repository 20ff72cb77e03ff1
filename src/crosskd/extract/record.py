"""extraction.json: what produced every feature of an own-video dataset, and the collection
itself: its name, counts and videos per split, and per video its file (relative to the dataset folder and
absolute), split, captions, keyframe, missing experts and what its experts read or heard.

A segmented dataset's record (format 3) also says how the videos were cut (`segmentation`),
and each video entry gains its timed captions and its `segments`, each with its id, start,
end, keyframe, missing experts, what its experts read or heard (times in the video's time)
and the timed captions it was given; the video's own `captions` are its untimed ones.

A later `crosskd extract` into the same folder reads the videos back from it
(crosskd.extract.collection), `crosskd index` the files, keyframes, texts and text encoder.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from crosskd.datasets.catalogue import OWN_VIDEOS
from crosskd.diskwrites import write_text_atomically
from crosskd.extract.cache import ResultCache
from crosskd.extract.collection import RECORD, ROOT_FEAT_FOLDER, SEGMENTED_FORMAT, Collection
from crosskd.extract.decode import DecodeSpec
from crosskd.extract.encoder import TextEncoder
from crosskd.extract.expert import Expert
from crosskd.extract.items import Items
from crosskd.extract.segmentation import SHOTS
from crosskd.extract.sources import recorded_source

#: 2: own-video layout, collection name and counts, per-video split, captions and both paths
#: (1: MSRVTT's layout, absolute sources).
FORMAT = 2
_FIX = "free disk space or choose another --out"


def _as_segmented(record: dict[str, Any], collection: Collection, items: Items) -> None:
    """Format 3: the segmentation, videos per split, and the timed captions left out."""
    record.update(format=SEGMENTED_FORMAT, segmentation=collection.segmentation.record(),
                  split_videos={split: len(ids) for split, ids in collection.splits.items()})
    record["report"]["timed_captions_after_end"] = items.late
    if collection.segmentation.mode == SHOTS:
        record["versions"].update(_library_versions(("scenedetect",)))


def _library_versions(modules: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for module in modules:
        try:
            found[module] = __import__(module).__version__
        except ImportError:
            pass
    return found


def _versions() -> dict[str, str]:
    import torch

    return {"python": platform.python_version(), "numpy": np.__version__,
            "torch": torch.__version__, **_library_versions(("av", "transformers"))}


def _decode_record(spec: DecodeSpec) -> dict[str, Any]:
    """What decoding took; `sizes` only when an expert had frames of its own size (OCR)."""
    record = {"rates": list(spec.rates), "pixel_dim": spec.pixel_dim,
              "max_frames": spec.max_frames, "audio_rate": spec.audio_rate}
    if spec.sizes:
        record["sizes"] = {str(rate): size for rate, size in spec.sizes}
    return record


def _seen(meta: dict[str, Any]) -> dict[str, Any]:
    """What extraction saw of a video or segment: keyframe, missing experts, texts."""
    seen = {"keyframe": meta.get("keyframe"), "missing": meta.get("missing", []),
            "texts": meta.get("texts", {})}
    if meta.get("timed_text"):
        seen["timed_text"] = meta["timed_text"]
    return seen


def _video_entry(out: Path, collection: Collection, video_id: str, split: str | None,
                 meta: dict[str, Any]) -> dict[str, Any]:
    """One video's entry: where its file is, its split and captions, what extraction saw."""
    return {**recorded_source(collection.sources[video_id], out), "split": split,
            "captions": collection.captions.get(video_id, []),
            "duration": meta.get("duration"), **_seen(meta)}


def _segmented_entry(entry: dict[str, Any], collection: Collection, items: Items,
                     video_id: str, cache: ResultCache) -> dict[str, Any]:
    """A segmented video's entry: its timed captions and segments; its keyframe is its first
    segment's, its missing experts those every segment misses."""
    segments = [{"id": item, "start": items.windows[item].start,
                 "end": items.windows[item].end, **_seen(cache.meta(items.result(item)) or {}),
                 "captions": items.captions.get(item, [])}
                for item in items.by_video[video_id]]
    missing = set.intersection(*(set(s["missing"]) for s in segments)) if segments else set()
    timed = [{"start": c.start, "end": c.end, "caption": c.text}
             for c in collection.timed.get(video_id, [])]
    return {**entry, "keyframe": segments[0]["keyframe"] if segments else None,
            "missing": sorted(missing), "texts": {}, "timed_captions": timed,
            "segments": segments}


def counts(collection: Collection, items: Items | None = None) -> dict[str, int]:
    """How many videos, captioned videos and captions the collection has; for a segmented
    one also its segments, the captioned ones and the timed captions."""
    held = collection.split_captions
    captioned = [vid for vid in collection.video_ids if vid in held]
    found = {"videos": len(collection.video_ids), "captioned_videos": len(captioned),
             "captions": sum(len(held[vid]) for vid in captioned)}
    if items is not None and items.windows is not None:
        found.update(segments=len(items.ids), captioned_segments=len(items.captions),
                     untimed_captions=sum(len(collection.captions.get(vid, ()))
                                          for vid in collection.video_ids))
    return found


def write_record(out: Path, collection: Collection, items: Items, experts: list[Expert],
                 files: dict[str, dict[str, str | None]], text_encoder: TextEncoder,
                 cache: ResultCache, spec: DecodeSpec) -> Path:
    """Write `out`/extraction.json; `files` gives each expert's files by modality (`file`,
    and `frames_file` or None)."""
    videos = {}
    splits = {vid: name for name, ids in collection.splits.items() for vid in ids}
    for video_id in collection.video_ids:
        meta = cache.meta(video_id) or {}
        videos[video_id] = _video_entry(out, collection, video_id, splits.get(video_id), meta)
        if items.windows is not None:
            videos[video_id] = _segmented_entry(videos[video_id], collection, items, video_id,
                                                cache)
    missing = {e.modality: 0 for e in experts}
    for entry in (s for v in videos.values() for s in v.get("segments", [v])):
        for modality in entry["missing"]:
            missing[modality] = missing.get(modality, 0) + 1
    failed = [{"video": vid, "reason": reason} for vid, reason in collection.failed.items()]
    record = {
        "format": FORMAT, "dataset_name": OWN_VIDEOS.name, "name": collection.name,
        "root_feat_folder": ROOT_FEAT_FOLDER, "counts": counts(collection, items),
        "splits": {split: len(ids) for split, ids in items.splits.items()},
        "text_encoder": text_encoder.record(),
        "experts": [{**e.provenance(), **files[e.modality]} for e in experts],
        "decode": _decode_record(spec),
        "versions": _versions(),
        "report": {"videos": len(collection.video_ids), "failed": failed,
                   "missing": missing, "without_video": collection.without_video,
                   "without_captions": collection.without_captions},
        "videos": videos,
    }
    if items.windows is not None:
        _as_segmented(record, collection, items)
    path = out / RECORD
    write_text_atomically(path, json.dumps(record, indent=1) + "\n", _FIX)
    return path
