"""`build_index`: embed a split's videos and captions with a trained model into an Index.

Videos and captions are embedded exactly as evaluation embeds them (crosskd.inference), on
any device, so a caption query reproduces the test split's similarity matrix row for row.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from crosskd.config import (ExperimentConfig, apply_overrides, as_experiment,
                            with_eval_settings)
from crosskd.data import layouts
from crosskd.data.batches import EvalSplit
from crosskd.data.pickles import load_small_pickle
from crosskd.data.retrieval import RetrievalData
from crosskd.errors import UserError
from crosskd.extract.sources import video_source
from crosskd.inference import (default_caption_chunk, embed_captions, embed_videos, load_model,
                               on_cpu)
from crosskd.models import CENet
from crosskd.search.bank import BankChoice, querybank
from crosskd.search.captions import MAX_READ, CaptionStore
from crosskd.search.index import Index
from crosskd.search.text_side import TextSide
from crosskd.untrusted import UnsafePathError, contained, terminal_safe

log = logging.getLogger(__name__)

#: the own-video dataset's record of how it was made (crosskd extract), with its text encoder
EXTRACTION_RECORD = "extraction.json"
#: what a refused video source adds: a dataset made here records the user's own video paths
OWN_VIDEOS = "; if these are your own videos, allow their folder with --media-root FOLDER"


def with_split(config: dict[str, Any], split: str | None) -> dict[str, Any]:
    """The config of the collection to index: the final test's (`eval_settings` merged, as
    `test.py` evaluates), its split replaced by `split` when given."""
    config = with_eval_settings(config)
    if not split:
        return config
    return apply_overrides(config, [("data_loader.args.split_name", json.dumps(split))])


def _caption_store(model: CENet, split: EvalSplit, device: torch.device) -> CaptionStore:
    """Every real caption of the split in use, embedded by the model on `device` (video-major)."""
    embeddings, weights, owner, slot = [], [], [], []
    real = split.query_masks.reshape(-1) > 0
    with torch.inference_mode():
        for start, text in embed_captions(model, split, device, default_caption_chunk(device)):
            text = on_cpu(text)
            rows = np.arange(start * split.slots, start * split.slots + len(text))
            kept = real[rows]
            embeddings.append(text.embeddings.numpy()[kept])
            weights.append(text.weights.numpy()[kept])
            owner.append(rows[kept] // split.slots)
            slot.append(rows[kept] % split.slots)
    return CaptionStore(np.concatenate(embeddings), np.concatenate(weights),
                        np.concatenate(owner), np.concatenate(slot))


def _caption_texts(root: Path, layout_name: str, split: EvalSplit) -> dict[str, list[str]]:
    """Each video's caption text per slot, from the dataset's raw captions (when present)."""
    path = root / layouts.get_layout(layout_name).raw_captions
    if not path.is_file():
        log.info("no %s: results show video ids without captions", path.name)
        return {}
    raw = load_small_pickle(path)

    def words(caption: Any) -> str:
        return caption if isinstance(caption, str) else " ".join(str(w) for w in caption)

    texts = {}
    for v, vid in enumerate(split.video_ids):
        captions = [words(c) for c in raw.get(vid, [])]
        if split.fuse_captions:
            captions = [" / ".join(captions)]
        elif split.caption_choice is not None and captions:
            captions = [captions[int(split.caption_choice[v])]]
        texts[vid] = captions
    return texts


def extraction_record(data_dir: Path) -> dict[str, Any]:
    """What `crosskd extract` recorded about an own-video dataset ({} for published features)."""
    path = data_dir / EXTRACTION_RECORD
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{path} cannot be read ({err})") from None
    if not isinstance(record, dict):
        raise UserError(f"{path} is not an extraction record (a JSON object); run crosskd "
                        "extract again")
    return record


def read_texts(record: dict[str, Any], video_ids: list[str]) -> dict[str, dict[str, str]]:
    """What each indexed video's experts read or heard, as `crosskd extract` recorded it
    (`videos.ID.texts`, kind -> text: ocr lines, speech transcripts), for results to show;
    only videos with some text."""
    videos = record.get("videos")
    if not isinstance(videos, dict):
        return {}
    read = {video_id: _kept_texts(videos.get(video_id)) for video_id in video_ids}
    return {video_id: texts for video_id, texts in read.items() if texts}


def _kept_texts(entry: Any) -> dict[str, str]:
    """An entry's non-empty texts, each cut to MAX_READ characters so the index stays small;
    the record may come from someone else, so anything that is not text is left out."""
    texts = entry.get("texts") if isinstance(entry, dict) else None
    if not isinstance(texts, dict):
        return {}
    return {kind: _cut(text) for kind, text in texts.items()
            if isinstance(text, str) and text.strip()}


def _cut(text: str) -> str:
    """`text` stripped, at most MAX_READ characters (an ellipsis ending a cut one)."""
    text = text.strip()
    return text if len(text) <= MAX_READ else text[:MAX_READ - 1] + "\u2026"


def media_sources(record: dict[str, Any], data_dir: Path, video_ids: list[str],
                  media_roots: Sequence[Path] = ()) -> dict[str, dict[str, Path]]:
    """Each indexed video's source file and keyframe, as the extraction record names them,
    resolved. The record may come from someone else, so a file it names is taken only from
    inside the dataset folder (keyframes) or it and `media_roots` (videos: `crosskd extract`
    records the user's own video paths, wherever they are); a missing file is left out."""
    videos = record.get("videos") or {}
    if not isinstance(videos, dict):
        raise UserError(f"{data_dir / EXTRACTION_RECORD}: 'videos' is not a table of video "
                        "ids; run crosskd extract again")
    sources = {}
    for video_id in video_ids:
        entry = videos.get(video_id)
        if not isinstance(entry, dict):
            continue
        keyframe = entry.get("keyframe")
        found = video_source(entry, data_dir, video_id)  # from where the dataset is now
        named = {"video": ("source", found and str(found), (data_dir, *media_roots), OWN_VIDEOS),
                 "thumbnail": ("keyframe file", keyframe.get("file")
                               if isinstance(keyframe, dict) else None, (data_dir,), "")}
        files = {}
        for kind, (field, text, roots, advice) in named.items():
            what = f"{data_dir / EXTRACTION_RECORD} entry {video_id!r} {field}"
            path = _media_file(data_dir, text, roots, what, advice) if text else None
            if path is not None:
                files[kind] = path
        if files:
            sources[video_id] = files
    return sources


def _media_file(data_dir: Path, text: Any, roots: Sequence[Path], what: str, advice: str
                ) -> Path | None:
    """The file a record entry names (relative to the dataset folder, or absolute) resolved
    inside one of `roots`; None if there is no such file; refused if it lies outside them."""
    if not isinstance(text, str):
        raise UserError(f"{what} is {text!r}, not a path; run crosskd extract again")
    path = (data_dir / text).absolute()
    if not path.is_file():
        return None
    for root in roots:
        try:
            return contained(root, path, what)
        except UnsafePathError:
            continue
    inside = " or ".join(str(Path(root).resolve()) for root in roots)
    raise UnsafePathError(f"{what}: {terminal_safe(text)!r} resolves to {path.resolve()}, "
                          f"outside {inside}; crosskd index copies no media from elsewhere"
                          f"{advice}")


def build_index(config: ExperimentConfig | dict[str, Any], checkpoint: str | Path,
                dtype: str = "float32", backend: str = "exact",
                cache_dir: str | Path | None = None, media_roots: Sequence[Path] = (),
                qbnorm: BankChoice | None = None, device: torch.device | str = "cpu",
                **backend_options: Any) -> Index:
    """Embed the evaluation split of `config` with the checkpoint's model on `device` into an
    Index (videos outside the dataset folder are shown only from `media_roots`; QB-Norm's
    bank folded in when `qbnorm` says which)."""
    experiment = as_experiment(config)
    device = torch.device(device)
    model = load_model(experiment.model, checkpoint, device)
    data = RetrievalData.load(experiment.data, cache_dir=cache_dir)
    index = index_from_model(model, experiment, data, dtype, backend, media_roots, qbnorm,
                             device, **backend_options)
    index.info["checkpoint"] = str(checkpoint)
    return index


def index_from_model(model: CENet, experiment: ExperimentConfig, data: RetrievalData,
                     dtype: str = "float32", backend: str = "exact",
                     media_roots: Sequence[Path] = (), qbnorm: BankChoice | None = None,
                     device: torch.device = torch.device("cpu"), **backend_options: Any
                     ) -> Index:
    """The Index of `data`'s evaluation split embedded by `model` (of `experiment`, on
    `device`), with QB-Norm's bank folded against its videos when `qbnorm` says which."""
    model.eval()
    split = data.eval
    record = extraction_record(experiment.data.data_dir)
    media = media_sources(record, experiment.data.data_dir, split.video_ids, media_roots)
    video = embed_videos(model, split, device)
    text_side = TextSide.of_model(model, experiment.raw, experiment.data.max_tokens["text"],
                                  record.get("text_encoder"))
    bank = None if qbnorm is None else querybank(qbnorm, model, data, text_side, video, device)
    video = on_cpu(video)
    index = Index.from_embeddings(split.video_ids, video.modalities, video.dims,
                                  video.embeddings, video.availability, dtype, backend, bank,
                                  **backend_options)
    index.captions = _caption_store(model, split, device)
    index.captions.texts = _caption_texts(data.root, experiment.data.dataset_name, split)
    index.captions.read = read_texts(record, split.video_ids)
    index.text_side = text_side
    index.media_sources = media
    index.info = {"dataset": experiment.data.dataset_name,
                  "split": experiment.data.split_name,
                  "data_dir": str(experiment.data.data_dir)}
    if qbnorm is not None:
        index.info["qbnorm_bank"] = qbnorm.describe(data)
    return index
