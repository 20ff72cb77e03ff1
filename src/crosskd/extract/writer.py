"""The dataset extraction writes, in the own-video layout (`crosskd.datasets.catalogue`
OWN_VIDEOS): every item's expert pickles, caption token features and raw captions (none for
an item without captions), the split lists of the captioned items, config.json /
config-cecap.json for train.py and test.py (trained on split `val`, tested on `test`), and
extraction.json (crosskd.extract.record). The items are the videos, or the segments of a
segmented dataset (`crosskd.extract.items`), which also gets segments.json (each segment's
video, start and end: crosskd.data.segments).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from crosskd.data import layouts
from crosskd.data.picklewriter import write_dict_pickle, write_pickle
from crosskd.data.segments import write_segments
from crosskd.diskwrites import reported_write, write_text_atomically
from crosskd.datasets.catalogue import OWN_VIDEOS
from crosskd.extract.cache import ResultCache
from crosskd.extract.collection import ROOT_FEAT_FOLDER, Collection
from crosskd.extract.decode import DecodeSpec
from crosskd.extract.encoder import TextEncoder, words
from crosskd.extract.expert import FRAMES, Expert
from crosskd.extract.items import Items
from crosskd.extract.record import write_record
from crosskd.extract.training_plan import generated_config, warn_small_splits

log = logging.getLogger(__name__)
#: each split's list: the evaluation list of the layout's split of that name.
SPLIT_FILES = {split: lists[1] for split, lists in OWN_VIDEOS.layout.splits.items()}
#: the generated configs train on `train`, validate on `val` and test on `test`.
TRAINING_SPLIT, TEST_SPLIT = "val", "test"
#: the generated configs: file -> (shipped base for weight-free experts, for pretrained ones)
CONFIGS = {"config.json": ("demo/msrvtt-demo-ce.json", "msrvtt-train-gpt2-xl-finetuned-mte-adam-ce.json"),
           "config-cecap.json": ("demo/msrvtt-demo-cecap.json",
                                 "msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json")}
MAX_TEST_CAPTIONS = 20
_FIX = "free disk space or choose another --out"


def _feature_items(cache: ResultCache, items: Items,
                   modality: str) -> Iterator[tuple[str, Any]]:
    for item in items.ids:
        value = cache.feature(items.result(item), modality)
        yield item, float("nan") if value is None else value.astype(np.float32)


def expert_file(expert: Expert, spec: DecodeSpec) -> str:
    """The file an expert is stored in, as layouts derive it from its config entry (a token
    expert's is fixed by the layout)."""
    (path,) = layouts.expert_paths(OWN_VIDEOS.layout, expert.modality,
                                   {expert.modality: expert.aggregation(spec.pixel_dim)})
    return path


def frames_file(relative: str) -> str:
    """Where per-frame features go: `<model>-frames.pickle` beside `<model>-avg.pickle`."""
    return relative.rsplit("-", 1)[0] + "-frames.pickle"


def _token_counts(cache: ResultCache, items: Items, modality: str) -> list[int]:
    counts = []
    for item in items.ids:
        value = cache.feature(items.result(item), modality)
        if value is not None:
            counts.append(len(value))
    return counts


def _max_tokens(counts: list[int], cap: int) -> int:
    """The 95th percentile of the token counts (at least 1, at most `cap`)."""
    return int(min(cap, max(1, np.percentile(counts, 95)))) if counts else 1


def held_experts(experts: list[Expert], cache: ResultCache, items: Items) -> list[Expert]:
    """The experts some item of the collection has (one line for each left out): an expert
    no video has, sound in a silent collection, would give the model nothing to pool."""
    missing = {expert.modality: 0 for expert in experts}
    for item in items.ids:
        for modality in (cache.meta(items.result(item)) or {}).get("missing", ()):
            missing[modality] = missing.get(modality, 0) + 1
    held = [expert for expert in experts if missing[expert.modality] < len(items.ids)]
    for expert in experts:
        if expert not in held:
            log.info("extract: expert %s (%s) has nothing for any video of the collection "
                     "(no sound, speech or text on screen, say): the generated configs leave "
                     "it out", expert.name, expert.modality)
    return held


def write_dataset(out: Path, collection: Collection, items: Items, experts: list[Expert],
                  text_encoder: TextEncoder, cache: ResultCache, spec: DecodeSpec) -> Path:
    """Write every file of the dataset under `out` (the data_dir); returns extraction.json."""
    root = out / ROOT_FEAT_FOLDER
    with reported_write(root, _FIX, action="create"):
        root.mkdir(parents=True, exist_ok=True)
    for expert in experts:
        files = _files(expert, spec)
        write_dict_pickle(root / files["file"], _feature_items(cache, items, expert.modality))
        if files["frames_file"]:
            write_dict_pickle(root / files["frames_file"],
                              _feature_items(cache, items, expert.modality + FRAMES))
    text_tokens = _write_captions(root, items, text_encoder)
    if items.splits:  # a collection without captions has none
        for split, name in SPLIT_FILES.items():
            write_text_atomically(root / name, "\n".join(items.splits[split]) + "\n", _FIX)
        warn_small_splits(items.splits, "video" if items.windows is None else "segment")
    if items.windows is not None:
        write_segments(root, items.windows)
    held = held_experts(experts, cache, items)
    max_tokens = {e.modality: _max_tokens(_token_counts(cache, items, e.modality), 32)
                  for e in held if e.output_kind == "tokens"}
    max_tokens["text"] = _max_tokens(text_tokens, 48)
    test_captions = min(MAX_TEST_CAPTIONS, max(
        (len(items.captions.get(item, ())) for item in items.ids), default=1) or 1)
    weight_free = all(e.weights() == "weight-free" for e in experts)
    # a collection without captions trains on nothing: its configs say what it holds
    train_videos = max(1, len(items.splits.get("train", ())))
    for name, bases in CONFIGS.items():
        config = generated_config(out, held, spec, text_encoder.text_feat, max_tokens,
                                  test_captions, bases[0] if weight_free else bases[1],
                                  dataset=OWN_VIDEOS.name, root_feat_folder=ROOT_FEAT_FOLDER,
                                  train_videos=train_videos,
                                  split_names=(TRAINING_SPLIT, TEST_SPLIT))
        write_text_atomically(out / name, json.dumps(config, indent=1) + "\n", _FIX)
    return write_record(out, collection, items, experts,
                        {e.modality: _files(e, spec) for e in experts}, text_encoder, cache, spec)


def _files(expert: Expert, spec: DecodeSpec) -> dict[str, str | None]:
    """The files an expert was written to, as extraction.json names them."""
    file = expert_file(expert, spec)
    return {"file": file, "frames_file": frames_file(file) if expert.keeps_frames else None}


def _write_captions(root: Path, items: Items, text_encoder: TextEncoder) -> list[int]:
    """Every item's caption token features and raw captions (none for an item without
    captions, so each file has every item); returns the token count of each caption."""
    layout = OWN_VIDEOS.layout
    text_tokens: list[int] = []

    def caption_items() -> Iterator[tuple[str, list[np.ndarray]]]:
        for item in items.ids:
            features = text_encoder.encode(items.captions.get(item, []))
            text_tokens.extend(len(f) for f in features)
            yield item, features

    (text_path,) = layouts.text_feat_paths(layout, text_encoder.text_feat, TRAINING_SPLIT)
    write_dict_pickle(root / text_path, caption_items())
    write_pickle(root / layout.raw_captions,
                 {item: [words(c) for c in items.captions.get(item, [])] for item in items.ids})
    return text_tokens
