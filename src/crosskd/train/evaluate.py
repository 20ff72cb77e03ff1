"""Retrieval evaluation: embed every video and caption once, score in chunks, then rank.

Memory stays bounded: the similarity matrix is built `chunk_queries` captions at a time
against all videos, and only the float32 result (queries x videos) is kept.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from crosskd.checkpoint.original import load_original_state_dict
from crosskd.config import Config
from crosskd.data.retrieval import RetrievalData
from crosskd.metrics import t2v_metrics, v2t_metrics
from crosskd.models import build_model
from crosskd.models.embeddings import TextEmbedding, VideoEmbedding
from crosskd.models.similarity import cross_view_similarity
from crosskd.train.checkpoints import read_checkpoint

log = logging.getLogger(__name__)

DEFAULT_CHUNK_ELEMENTS = 1 << 24  # scores held at once while scoring (64 MiB of float32)


@torch.inference_mode()
def embed_split(model: torch.nn.Module, eval_split: Any, batch_size: int,
                device: torch.device) -> tuple[TextEmbedding, VideoEmbedding]:
    """Every caption and every video of a split embedded once, on `device`."""
    model.eval()
    texts, videos = [], []
    batches = eval_split.batches(batch_size)
    for batch in tqdm(batches, desc="embedding", leave=False, disable=None):
        batch = batch.to(device)
        videos.append(model.embed_videos(batch.experts, batch.ind))
        texts.append(model.embed_text(batch.text))
    return TextEmbedding.concat(texts), VideoEmbedding.concat(videos)


def _text_rows(text: TextEmbedding, start: int, stop: int) -> TextEmbedding:
    return dataclasses.replace(text, embeddings=text.embeddings[start:stop],
                               weights=text.weights[start:stop])


@torch.inference_mode()
def score_all(text: TextEmbedding, video: VideoEmbedding,
              chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> np.ndarray:
    """The `[queries, videos]` float32 similarity matrix, computed a chunk of queries at a time."""
    rows = max(1, chunk_elements // max(1, len(video)))
    sims = np.empty((len(text), len(video)), dtype=np.float32)
    for start in range(0, len(text), rows):
        chunk = cross_view_similarity(_text_rows(text, start, start + rows), video)
        sims[start:start + rows] = chunk.float().cpu().numpy()
    return sims


def protocol_of(eval_split: Any) -> dict[str, Any]:
    """Dataset, split, caption slots per video and number of real queries of a split."""
    masks = np.asarray(eval_split.query_masks)
    reported = eval_split.protocol
    if dataclasses.is_dataclass(reported):
        reported = dataclasses.asdict(reported)
    protocol = dict(reported or {})
    protocol.setdefault("captions_per_video", int(masks.shape[1]))
    protocol["num_queries"] = int(masks.sum())
    protocol["num_videos"] = int(masks.shape[0])
    return protocol


def evaluate(model: torch.nn.Module, eval_split: Any, batch_size: int, device: torch.device,
             chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> dict[str, Any]:
    """t2v and v2t metrics of `model` on an evaluation split, with the protocol used."""
    text, video = embed_split(model, eval_split, batch_size, device)
    sims = score_all(text, video, chunk_elements)
    masks = np.asarray(eval_split.query_masks)
    return {"t2v": t2v_metrics(sims, masks), "v2t": v2t_metrics(sims, masks),
            "protocol": protocol_of(eval_split)}


def evaluate_checkpoint(config: Config, checkpoint_path: str | Path,
                        device: torch.device | str = "cpu",
                        cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Build the model `config` describes, load a checkpoint (ours or the original's) and test it.

    `config` is used as given: merge `eval_settings` first (crosskd.config.with_eval_settings)
    for the published test protocol. `cache_dir` keeps the packed features between calls.
    """
    device = torch.device(device)
    model = build_model(config)
    state_dict, _ = read_checkpoint(checkpoint_path)
    load_original_state_dict(model, state_dict, source=str(checkpoint_path))
    model.to(device)
    data = RetrievalData.from_config(config, cache_dir=cache_dir)
    batch_size = int(config["data_loader"]["args"].get("batch_size", 64))
    return evaluate(model, data.eval, batch_size, device)
