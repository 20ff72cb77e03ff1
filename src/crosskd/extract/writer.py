"""The dataset extraction writes: MSRVTT's published layout (expert pickles, caption token
features, raw captions, split lists) plus config.json / config-cecap.json for train.py and
test.py, and extraction.json recording what produced every feature.

The split lists are MSRVTT's `full` ones (train / val / test), so `full-val` trains and
`full-test` evaluates, as the published MSRVTT configs do.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from crosskd.config import load_config
from crosskd.data import layouts
from crosskd.data.picklewriter import write_dict_pickle, write_pickle
from crosskd.diskwrites import reported_write, write_text_atomically
from crosskd.extract.cache import ResultCache
from crosskd.extract.decode import DecodeSpec
from crosskd.extract.encoder import TextEncoder, words
from crosskd.extract.expert import FRAMES, Expert
from crosskd.shipped import config_dir

DATASET = "MSRVTT"
ROOT_FEAT_FOLDER = "high-quality/structured-symlinks"
SPLIT_FILES = {"train": "train_list_full.txt", "val": "val_list_full.txt",
               "test": "test_list_full.txt"}
#: the generated configs: file -> (shipped base for weight-free experts, for pretrained ones)
CONFIGS = {"config.json": ("demo/msrvtt-demo-ce.json", "msrvtt-train-gpt2-xl-finetuned-mte-adam-ce.json"),
           "config-cecap.json": ("demo/msrvtt-demo-cecap.json",
                                 "msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json")}
MAX_TEST_CAPTIONS = 20
_FIX = "free disk space or choose another --out"


@dataclass
class Collection:
    """What goes into the dataset: its videos, captions, splits and the report's notes."""

    video_ids: list[str]
    captions: dict[str, list[str]]
    splits: dict[str, list[str]] = field(default_factory=dict)
    #: videos left out because no expert could read them, with the reason.
    failed: dict[str, str] = field(default_factory=dict)
    without_video: list[str] = field(default_factory=list)
    without_captions: list[str] = field(default_factory=list)


def _feature_items(cache: ResultCache, video_ids: list[str],
                   modality: str) -> Iterator[tuple[str, Any]]:
    for video_id in video_ids:
        value = cache.feature(video_id, modality)
        yield video_id, float("nan") if value is None else value.astype(np.float32)


def expert_file(expert: Expert, spec: DecodeSpec) -> str:
    """The file an expert is stored in, as layouts derive it from its config entry."""
    layout = layouts.get_layout(DATASET)
    (path,) = layouts.expert_paths(layout, expert.modality,
                                   {expert.modality: expert.aggregation(spec.pixel_dim)})
    return path


def frames_file(relative: str) -> str:
    """Where per-frame features go: `<model>-frames.pickle` beside `<model>-avg.pickle`."""
    return relative.rsplit("-", 1)[0] + "-frames.pickle"


def _token_counts(cache: ResultCache, video_ids: list[str], modality: str) -> list[int]:
    counts = []
    for video_id in video_ids:
        value = cache.feature(video_id, modality)
        if value is not None:
            counts.append(len(value))
    return counts


def _max_tokens(counts: list[int], cap: int) -> int:
    """The 95th percentile of the token counts (at least 1, at most `cap`)."""
    return int(min(cap, max(1, np.percentile(counts, 95)))) if counts else 1


def generated_config(out: Path, experts: list[Expert], spec: DecodeSpec, text_feat: str,
                     max_tokens: dict[str, int], test_captions: int, base: str) -> dict[str, Any]:
    """A whole config (no inherit_from) for the dataset, from a shipped MSRVTT config."""
    config = load_config(config_dir() / base)
    config.pop("inherit_from", None)
    config["experts"]["modalities"] = [e.modality for e in experts]
    config["experts"]["text_feat"] = text_feat
    args = config["data_loader"]["args"]
    args.update({"data_dir": str(out.resolve()), "root_feat_folder": ROOT_FEAT_FOLDER,
                 "dataset_name": DATASET, "split_name": "full-val",
                 "num_test_captions": test_captions, "max_tokens": max_tokens,
                 "feat_aggregation": {e.modality: e.aggregation(spec.pixel_dim)
                                      for e in experts}})
    clusters = config["arch"]["args"]["vlad_clusters"]
    ghosts = config["arch"]["args"].setdefault("ghost_clusters", {})
    for expert in experts:
        if expert.output_kind == "tokens":
            clusters.setdefault(expert.modality, 8)
            ghosts.setdefault(expert.modality, 1)
    config["trainer"]["save_dir"] = str((out / "runs").resolve())
    config["eval_settings"] = {"data_loader": {"args": {"split_name": "full-test",
                                                        "num_test_captions": test_captions}}}
    return config


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


def write_dataset(out: Path, collection: Collection, experts: list[Expert],
                  text_encoder: TextEncoder, cache: ResultCache, spec: DecodeSpec) -> Path:
    """Write every file of the dataset under `out` (the data_dir); returns extraction.json."""
    root = out / ROOT_FEAT_FOLDER
    with reported_write(root, _FIX, action="create"):
        root.mkdir(parents=True, exist_ok=True)
    ids = collection.video_ids
    layout = layouts.get_layout(DATASET)
    max_tokens: dict[str, int] = {}
    for expert in experts:
        if expert.output_kind == "tokens":
            (relative,) = layout.custom_paths[expert.modality]
            max_tokens[expert.modality] = _max_tokens(
                _token_counts(cache, ids, expert.modality), 32)
        else:
            relative = expert_file(expert, spec)
        write_dict_pickle(root / relative, _feature_items(cache, ids, expert.modality))
        if expert.keeps_frames:
            write_dict_pickle(root / frames_file(relative),
                              _feature_items(cache, ids, expert.modality + FRAMES))
    text_tokens: list[int] = []

    def caption_items() -> Iterator[tuple[str, list[np.ndarray]]]:
        for video_id in ids:
            features = text_encoder.encode(collection.captions[video_id])
            text_tokens.extend(len(f) for f in features)
            yield video_id, features

    (text_path,) = layouts.text_feat_paths(layout, text_encoder.text_feat, "full-val")
    write_dict_pickle(root / text_path, caption_items())
    max_tokens["text"] = _max_tokens(text_tokens, 48)
    write_pickle(root / layout.raw_captions,
                 {vid: [words(c) for c in collection.captions[vid]] for vid in ids})
    for split, name in SPLIT_FILES.items():
        write_text_atomically(root / name, "\n".join(collection.splits[split]) + "\n", _FIX)
    test_captions = min(MAX_TEST_CAPTIONS, max(len(collection.captions[v]) for v in ids))
    weight_free = all(e.weights() == "weight-free" for e in experts)
    for name, bases in CONFIGS.items():
        config = generated_config(out, experts, spec, text_encoder.text_feat, max_tokens,
                                  test_captions, bases[0] if weight_free else bases[1])
        write_text_atomically(out / name, json.dumps(config, indent=1) + "\n", _FIX)
    return _write_record(out, collection, experts, text_encoder, cache, spec)


def _expert_record(expert: Expert, spec: DecodeSpec) -> dict[str, Any]:
    """An expert's provenance and the files it was written to."""
    if expert.output_kind == "tokens":
        file = layouts.get_layout(DATASET).custom_paths[expert.modality][0]
    else:
        file = expert_file(expert, spec)
    return {**expert.provenance(), "file": file,
            "frames_file": frames_file(file) if expert.keeps_frames else None}


def _absolute(path: str | None) -> str | None:
    """A video's path as readers of the record need it: VIDEOS may have been given relative
    to the folder extract ran in, which a reader (crosskd index) cannot know."""
    return None if path is None else str(Path(path).absolute())


def _decode_record(spec: DecodeSpec) -> dict[str, Any]:
    """What decoding took; `sizes` only when an expert had frames of its own size (OCR)."""
    record = {"rates": list(spec.rates), "pixel_dim": spec.pixel_dim,
              "max_frames": spec.max_frames, "audio_rate": spec.audio_rate}
    if spec.sizes:
        record["sizes"] = {str(rate): size for rate, size in spec.sizes}
    return record


def _write_record(out: Path, collection: Collection, experts: list[Expert],
                  text_encoder: TextEncoder, cache: ResultCache, spec: DecodeSpec) -> Path:
    videos, missing = {}, {e.modality: 0 for e in experts}
    for video_id in collection.video_ids:
        result = cache.load(video_id)
        videos[video_id] = {"source": _absolute(result.source.get("path")),
                            "duration": result.duration,
                            "keyframe": result.keyframe, "missing": result.missing,
                            "texts": result.texts}
        if result.timed_text:
            videos[video_id]["timed_text"] = result.timed_text
        for modality in result.missing:
            missing[modality] += 1
    failed = [{"video": vid, "reason": reason} for vid, reason in collection.failed.items()]
    record = {
        "format": 1, "dataset_name": DATASET, "root_feat_folder": ROOT_FEAT_FOLDER,
        "text_encoder": text_encoder.record(),
        "experts": [_expert_record(e, spec) for e in experts],
        "decode": _decode_record(spec),
        "versions": _versions(),
        "splits": {split: len(ids) for split, ids in collection.splits.items()},
        "report": {"videos": len(collection.video_ids), "failed": failed,
                   "missing": missing, "without_video": collection.without_video,
                   "without_captions": collection.without_captions},
        "videos": videos,
    }
    path = out / "extraction.json"
    write_text_atomically(path, json.dumps(record, indent=1) + "\n", _FIX)
    return path
