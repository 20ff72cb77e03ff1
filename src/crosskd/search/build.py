"""`build_index`: embed a collection's videos and captions with a trained model into an Index.

The collection is every video of an own collection, or a dataset's evaluation split
(crosskd.search.videos). Videos and captions are embedded exactly as evaluation embeds them
(crosskd.inference), on any device, so a caption query reproduces the split's similarity
matrix row for row. Given the index built before, only the new and changed videos are
embedded (`update_index`, crosskd.search.update). The items of a segmented dataset are its
segments: the index keeps each one's video, start and end (crosskd.search.moments).
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from crosskd.config import (ExperimentConfig, apply_overrides, as_experiment,
                            with_eval_settings)
from crosskd.data import layouts
from crosskd.data.batches import EvalSplit
from crosskd.data.pickles import load_small_pickle
from crosskd.data.retrieval import RetrievalData
from crosskd.inference import (default_caption_chunk, embed_captions, embed_videos, load_model,
                               on_cpu)
from crosskd.inference.linear_library import resolve_cpu_matmul, use_linear_library
from crosskd.models import CENet
from crosskd.models.embeddings import VideoEmbedding
from crosskd.search.backends import EXACT
from crosskd.search.bank import BankChoice, querybank
from crosskd.search.captions import MAX_READ, CaptionStore
from crosskd.search.collection import collection_info
from crosskd.search.fit import check_fit
from crosskd.search.index import Index
from crosskd.search.media import MediaTable
from crosskd.search.media_sources import media_sources, record_entries
from crosskd.search.moments import Moments, dataset_moments
from crosskd.search.text_side import TextSide
from crosskd.search.update import (Chosen, Plan, assembled_embeddings, index_settings,
                                   merged_captions, model_digest, plan_update,
                                   require_same_collection, require_same_settings,
                                   video_digests)
from crosskd.search.videos import Videos, extraction_record, open_videos

log = logging.getLogger(__name__)


def with_split(config: dict[str, Any], split: str | None) -> dict[str, Any]:
    """The config of the collection to index: the final test's (`eval_settings` merged, as
    `test.py` evaluates), its split replaced by `split` when given."""
    config = with_eval_settings(config)
    if not split:
        return config
    return apply_overrides(config, [("data_loader.args.split_name", json.dumps(split))])


def _caption_store(model: CENet, split: Chosen, device: torch.device) -> CaptionStore | None:
    """Every real caption of the videos, embedded by the model on `device` (video-major; the
    owner is a video's position among them); None when they have none."""
    real = split.query_masks.reshape(-1) > 0
    if not real.any():
        return None
    embeddings, weights, owner, slot = [], [], [], []
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


def read_texts(record: dict[str, Any], data_dir: Path, item_ids: list[str],
               moments: Moments | None = None) -> dict[str, dict[str, str]]:
    """What each indexed item's experts read or heard, as `crosskd extract` recorded it
    (`videos.ID.texts`, a segment's in its entry of the video's `segments`; kind -> text:
    ocr lines, speech transcripts), for results to show; only items with some text."""
    entries = record_entries(record, data_dir, item_ids, moments)
    read = {item: _kept_texts(own) for item, (_, _, own) in entries.items()}
    return {item: texts for item, texts in read.items() if texts}


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


@contextlib.contextmanager
def _cache_folder(cache_dir: str | Path | None) -> Iterator[Path]:
    """`cache_dir`, or a temporary packed-feature cache removed afterwards."""
    if cache_dir is not None:
        yield Path(cache_dir)
        return
    with tempfile.TemporaryDirectory(prefix="crosskd-cache-") as folder:
        yield Path(folder)


def build_index(config: ExperimentConfig | dict[str, Any], checkpoint: str | Path,
                dtype: str = "float32", backend: str = EXACT,
                cache_dir: str | Path | None = None, media_roots: Sequence[Path] = (),
                qbnorm: BankChoice | None = None, device: torch.device | str = "cpu",
                whole_collection: bool = False, **backend_options: Any) -> Index:
    """Embed the videos of `config`'s dataset with the checkpoint's model on `device` into an
    Index: every video of an own collection when `whole_collection`, else the evaluation
    split (videos outside the dataset folder are shown only from `media_roots`; QB-Norm's
    bank folded in when `qbnorm` says which)."""
    return update_index(config, checkpoint, None, dtype, backend, cache_dir, media_roots,
                        qbnorm, device, whole_collection, **backend_options)[0]


def update_index(config: ExperimentConfig | dict[str, Any], checkpoint: str | Path,
                 previous: Index | None, dtype: str = "float32", backend: str = EXACT,
                 cache_dir: str | Path | None = None, media_roots: Sequence[Path] = (),
                 qbnorm: BankChoice | None = None, device: torch.device | str = "cpu",
                 whole_collection: bool = False, **backend_options: Any
                 ) -> tuple[Index, Plan]:
    """`build_index`, embedding only the videos that `previous` (an index built before with
    the same settings, or None) lacks or holds with other features; and what changed."""
    experiment = as_experiment(config)
    record = extraction_record(experiment.data.data_dir)
    check_fit(experiment.data, record)
    device = torch.device(device)
    model = load_model(experiment.model, checkpoint, device)
    settings = index_settings(model_digest(model, experiment.raw), dtype, backend,
                              backend_options, qbnorm)
    use_linear_library(model, device, resolve_cpu_matmul(experiment.runtime.cpu_matmul))
    if previous is not None:
        require_same_settings(previous, settings)
    with _cache_folder(cache_dir) as cache:
        videos = open_videos(experiment, record, whole_collection, cache)
        if previous is not None:
            require_same_collection(previous, experiment.data.dataset_name, videos.split_name)
        index, plan = index_videos(model, experiment, videos, record, dtype, backend,
                                   media_roots, qbnorm, device, previous, **backend_options)
    index.info.update(settings=settings, checkpoint=str(checkpoint))
    return index, plan


def index_from_model(model: CENet, experiment: ExperimentConfig, data: RetrievalData,
                     dtype: str = "float32", backend: str = EXACT,
                     media_roots: Sequence[Path] = (), qbnorm: BankChoice | None = None,
                     device: torch.device = torch.device("cpu"), **backend_options: Any
                     ) -> Index:
    """The Index of `data`'s evaluation split embedded by `model` (of `experiment`, on
    `device`), with QB-Norm's bank folded against its videos when `qbnorm` says which."""
    record = extraction_record(experiment.data.data_dir)
    index, _ = index_videos(model, experiment, Videos.evaluation(experiment, data, record),
                            record, dtype, backend, media_roots, qbnorm, device, None,
                            **backend_options)
    index.info["settings"] = index_settings(model_digest(model, experiment.raw), dtype,
                                            backend, backend_options, qbnorm)
    return index


def index_videos(model: CENet, experiment: ExperimentConfig, videos: Videos,
                 record: dict[str, Any], dtype: str = "float32", backend: str = EXACT,
                 media_roots: Sequence[Path] = (), qbnorm: BankChoice | None = None,
                 device: torch.device = torch.device("cpu"), previous: Index | None = None,
                 **backend_options: Any) -> tuple[Index, Plan]:
    """The Index of `videos` (the dataset's `record` names their files and texts), embedded
    by `model` where `previous` holds no embedding of the same features; and the plan."""
    model.eval()
    split, data_dir = videos.split, experiment.data.data_dir
    moments = dataset_moments(videos.root, split.video_ids)
    media = media_sources(record, data_dir, split.video_ids, media_roots,
                          MediaTable(previous.root) if previous is not None else None, moments)
    bank_data = videos.training_data(experiment) \
        if qbnorm is not None and qbnorm.captions is None else None
    digests = video_digests(split)
    plan = plan_update(split.video_ids, digests, previous)
    chosen = Chosen(split, plan.embedded)
    fresh = on_cpu(embed_videos(model, chosen, device)) if len(plan.embedded) else None
    modalities, dims = (fresh.modalities, fresh.dims) if fresh else (previous.modalities,
                                                                      previous.dims)
    embeddings, availability = assembled_embeddings(plan, fresh, previous)
    text_side = TextSide.of_model(model, experiment.raw, experiment.data.max_tokens["text"],
                                  record.get("text_encoder"))
    bank = None
    if qbnorm is not None:
        stored = Index.from_embeddings(split.video_ids, modalities, dims, embeddings,
                                       availability, dtype).stored_embeddings()
        video = VideoEmbedding(modalities, torch.from_numpy(stored).to(device),
                               torch.from_numpy(availability).to(device), dims)
        bank = querybank(qbnorm, model, bank_data, text_side, video, device)
    index = Index.from_embeddings(split.video_ids, modalities, dims, embeddings, availability,
                                  dtype, backend, bank, **backend_options)
    index.captions = merged_captions(plan, _caption_store(model, chosen, device), previous,
                                     (len(modalities), max(dims)))
    index.captions.texts = _caption_texts(videos.root, experiment.data.dataset_name, split)
    index.captions.read = read_texts(record, data_dir, split.video_ids, moments)
    index.text_side, index.media_sources, index.digests = text_side, media, digests
    index.moments = moments
    whole = moments is None
    index.info = {**collection_info(videos.name, videos.split_name,
                                    experiment.data.dataset_name,
                                    len(index) if whole else len(moments.videos),
                                    index.captions.owner, None if whole else len(index)),
                  "data_dir": str(data_dir)}
    if qbnorm is not None:
        index.info["qbnorm_bank"] = qbnorm.describe(bank_data)
    return index, plan
