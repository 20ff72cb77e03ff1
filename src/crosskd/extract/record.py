"""extraction.json: what produced every feature of an own-video dataset, and the collection
itself: its name, counts and videos per split, and per video its file (relative to the dataset folder and
absolute), split, captions, keyframe, missing experts and what its experts read or heard.

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
from crosskd.extract.collection import RECORD, ROOT_FEAT_FOLDER, Collection
from crosskd.extract.decode import DecodeSpec
from crosskd.extract.encoder import TextEncoder
from crosskd.extract.expert import Expert
from crosskd.extract.sources import recorded_source

#: 2: own-video layout, collection name and counts, per-video split, captions and both paths
#: (1: MSRVTT's layout, absolute sources).
FORMAT = 2
_FIX = "free disk space or choose another --out"


def _versions() -> dict[str, str]:
    import torch

    found = {"python": platform.python_version(), "numpy": np.__version__,
             "torch": torch.__version__}
    for module in ("av", "transformers"):
        try:
            found[module] = __import__(module).__version__
        except ImportError:
            pass
    return found


def _decode_record(spec: DecodeSpec) -> dict[str, Any]:
    """What decoding took; `sizes` only when an expert had frames of its own size (OCR)."""
    record = {"rates": list(spec.rates), "pixel_dim": spec.pixel_dim,
              "max_frames": spec.max_frames, "audio_rate": spec.audio_rate}
    if spec.sizes:
        record["sizes"] = {str(rate): size for rate, size in spec.sizes}
    return record


def _video_entry(out: Path, collection: Collection, video_id: str, split: str | None,
                 meta: dict[str, Any]) -> dict[str, Any]:
    """One video's entry: where its file is, its split and captions, what extraction saw."""
    entry = {**recorded_source(collection.sources[video_id], out), "split": split,
             "captions": collection.captions.get(video_id, []),
             "duration": meta.get("duration"), "keyframe": meta.get("keyframe"),
             "missing": meta.get("missing", []), "texts": meta.get("texts", {})}
    if meta.get("timed_text"):
        entry["timed_text"] = meta["timed_text"]
    return entry


def counts(collection: Collection) -> dict[str, int]:
    """How many videos, captioned videos and captions the collection has."""
    captioned = [vid for vid in collection.video_ids if vid in collection.captions]
    return {"videos": len(collection.video_ids), "captioned_videos": len(captioned),
            "captions": sum(len(collection.captions[vid]) for vid in captioned)}


def write_record(out: Path, collection: Collection, experts: list[Expert],
                 files: dict[str, dict[str, str | None]], text_encoder: TextEncoder,
                 cache: ResultCache, spec: DecodeSpec) -> Path:
    """Write `out`/extraction.json; `files` gives each expert's files by modality (`file`,
    and `frames_file` or None)."""
    videos, missing = {}, {e.modality: 0 for e in experts}
    splits = {vid: name for name, ids in collection.splits.items() for vid in ids}
    for video_id in collection.video_ids:
        meta = cache.meta(video_id) or {}
        videos[video_id] = _video_entry(out, collection, video_id, splits.get(video_id), meta)
        for modality in meta.get("missing", []):
            missing[modality] = missing.get(modality, 0) + 1
    failed = [{"video": vid, "reason": reason} for vid, reason in collection.failed.items()]
    record = {
        "format": FORMAT, "dataset_name": OWN_VIDEOS.name, "name": collection.name,
        "root_feat_folder": ROOT_FEAT_FOLDER, "counts": counts(collection),
        "splits": {split: len(ids) for split, ids in collection.splits.items()},
        "text_encoder": text_encoder.record(),
        "experts": [{**e.provenance(), **files[e.modality]} for e in experts],
        "decode": _decode_record(spec),
        "versions": _versions(),
        "report": {"videos": len(collection.video_ids), "failed": failed,
                   "missing": missing, "without_video": collection.without_video,
                   "without_captions": collection.without_captions},
        "videos": videos,
    }
    path = out / RECORD
    write_text_atomically(path, json.dumps(record, indent=1) + "\n", _FIX)
    return path
