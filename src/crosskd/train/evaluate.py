"""Retrieval evaluation: embed every video once, then stream the captions through the model.

Memory stays bounded by the chunk size, not by the number of queries: the videos are
embedded first (`[V, E, D]`, small), then the captions of a few videos at a time are
embedded and scored at once against every video, so only the float32 similarity matrix
(queries x videos) grows with the split (the caption pages read are unmapped after each
chunk: crosskd.train.mapped). The scores are exactly those of embedding
everything first, since in evaluation mode every caption and video is embedded on its own.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from tqdm import tqdm

from crosskd.checkpoint.original import load_original_state_dict
from crosskd.checkpoint.paging import release_weights_after_use
from crosskd.config import Config, ExperimentConfig, as_experiment
from crosskd.data.batch import Batch
from crosskd.data.retrieval import RetrievalData
from crosskd.data.sampling import EvalBatches
from crosskd.metrics import t2v_metrics, v2t_metrics
from crosskd.models import build_model
from crosskd.models.spec import ModelSpec
from crosskd.models.embeddings import TextEmbedding, VideoEmbedding
from crosskd.models.similarity import cross_view_similarity
from crosskd.checkpoint.reader import read_checkpoint
from crosskd.train.distributed import EvalShards
from crosskd.train.mapped import release_mapped_pages
from crosskd.train.precision import Precision
from crosskd.train.runtime import (apply_cpu_settings, cpu_threads_for, resolve_cpu_matmul,
                                   resolve_precision)

log = logging.getLogger(__name__)

#: captions embedded at once; bounds the token tensor (e.g. 240 x 37 x 1600 float32 = 57 MB)
#: and the NetVLAD intermediates of evaluation.
DEFAULT_CAPTION_CHUNK = 240
#: the same on a GPU, where every chunk costs hundreds of kernel launches and a few GB of
#: intermediates are cheap (MSRVTT's 497 x 5 validation captions then take one chunk).
GPU_CAPTION_CHUNK = 4096


def default_caption_chunk(device: torch.device) -> int:
    """Captions per chunk for evaluating on `device`."""
    return GPU_CAPTION_CHUNK if device.type == "cuda" else DEFAULT_CAPTION_CHUNK


def videos_per_chunk(eval_split: EvalBatches, caption_chunk: int) -> int:
    """How many videos' caption slots fit in one chunk of `caption_chunk` captions."""
    slots = int(np.asarray(eval_split.query_masks).shape[1])
    return max(1, caption_chunk // max(1, slots))


def _chunks(eval_split: EvalBatches, videos: int, desc: str, shard: range | None = None
            ) -> Iterator[tuple[int, Batch]]:
    """(first video index within `shard`, batch) over the split's videos of `shard` (all by
    default) in order."""
    start = 0
    total = len(shard) if shard is not None else eval_split.num_videos
    for batch in tqdm(eval_split.batches(videos, shard), desc=desc, leave=False, disable=None,
                      total=-(-total // videos)):
        yield start, batch
        start += len(batch.video_ids)


def _float(embedding: TextEmbedding | VideoEmbedding) -> Any:
    """The embedding with float32 tensors (autocast may leave bfloat16 ones)."""
    fields = {name: value.float() for name, value in vars(embedding).items()
              if isinstance(value, torch.Tensor) and value.is_floating_point()}
    return dataclasses.replace(embedding, **fields)


def embed_videos(model: torch.nn.Module, eval_split: EvalBatches, device: torch.device,
                 caption_chunk: int | None = None, precision: Precision = Precision(),
                 shard: range | None = None) -> VideoEmbedding:
    """Every video of a split (or of its `shard`) embedded once (float32, on `device`)."""
    model.eval()
    caption_chunk = caption_chunk or default_caption_chunk(device)
    parts = []
    with precision.inference(), precision.autocast(device):
        for _, batch in _chunks(eval_split, videos_per_chunk(eval_split, caption_chunk),
                                "videos", shard):
            experts = {name: value.to(device) for name, value in batch.experts.items()}
            ind = {name: value.to(device) for name, value in batch.ind.items()}
            parts.append(_float(model.embed_videos(experts, ind)))
            release_mapped_pages(eval_split)
    return VideoEmbedding.concat(parts)


def score_split(model: torch.nn.Module, eval_split: EvalBatches, device: torch.device,
                caption_chunk: int | None = None, precision: Precision = Precision(),
                shards: EvalShards | None = None) -> np.ndarray:
    """The `[videos * slots, videos]` float32 similarity matrix of a split (video-major rows).

    Captions are embedded `caption_chunk` at a time and scored at once against all videos;
    no embedding of all captions is ever held. With `amp`, one autocast region spans the
    loop, so the weights are cast once, and the scores are float32 products of the embeddings.
    With `shards` (torchrun) each rank embeds and scores its own videos and captions, and
    the videos' embeddings and the score rows are gathered: every rank gets the whole matrix.
    """
    model.eval()
    caption_chunk = caption_chunk or default_caption_chunk(device)
    slots = int(np.asarray(eval_split.query_masks).shape[1])
    videos = videos_per_chunk(eval_split, caption_chunk)
    shard = shards.videos(eval_split.num_videos) if shards is not None else None
    with precision.inference(), precision.autocast(device):
        video = embed_videos(model, eval_split, device, caption_chunk, precision, shard)
        if shard is not None:
            video = shards.gather_videos(video)
        rows = len(shard) if shard is not None else eval_split.num_videos
        sims = torch.empty((rows * slots, len(video)), dtype=torch.float32)
        for start, batch in _chunks(eval_split, videos, "captions", shard):
            text = _float(model.embed_text(batch.text.to(device)))
            with torch.autocast(device.type, enabled=False):
                scores = cross_view_similarity(text, video)
            sims[start * slots:start * slots + len(scores)] = scores.cpu()
            release_mapped_pages(eval_split)
    if shard is not None:
        sims = shards.gather(sims.to(device), slots).cpu()
    return sims.numpy()


def protocol_of(eval_split: EvalBatches) -> dict[str, Any]:
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


def evaluate(model: torch.nn.Module, eval_split: EvalBatches, device: torch.device,
             caption_chunk: int | None = None, precision: Precision = Precision(),
             shards: EvalShards | None = None) -> dict[str, Any]:
    """t2v and v2t metrics of `model` on an evaluation split, with the protocol used (the
    same on every rank with `shards`)."""
    sims = score_split(model, eval_split, device, caption_chunk, precision, shards)
    masks = np.asarray(eval_split.query_masks)
    return {"t2v": t2v_metrics(sims, masks), "v2t": v2t_metrics(sims, masks),
            "protocol": protocol_of(eval_split)}


def load_model(spec: ModelSpec, checkpoint_path: str | Path) -> torch.nn.Module:
    """The model `spec` describes with a checkpoint's weights (ours or the original's).

    The model is built without weights (meta device) and takes the checkpoint's tensors,
    which for our checkpoints are memory-mapped: the weights are held once, not twice, and
    the large ones are unmapped again after each use (crosskd.checkpoint.paging).
    """
    state_dict, _ = read_checkpoint(checkpoint_path)
    with torch.device("meta"):
        model = build_model(spec)
    with warnings.catch_warnings():  # the checks load into meta tensors: a no-op by design
        warnings.filterwarnings("ignore", message=".*to a meta parameter.*")
        load_original_state_dict(model, state_dict, source=str(checkpoint_path))
    model.load_state_dict(state_dict, assign=True)
    release_weights_after_use(model)
    return model


def evaluate_checkpoint(config: ExperimentConfig | Config, checkpoint_path: str | Path,
                        device: torch.device | str = "cpu",
                        cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Build the model `config` describes, load a checkpoint (ours or the original's) and test it.

    `config` is used as given: take `ExperimentConfig.evaluation()` (eval_settings merged) for
    the published test protocol. `cache_dir` keeps the packed features between calls.
    """
    experiment = as_experiment(config)
    device = torch.device(device)
    model = load_model(experiment.model, checkpoint_path).to(device)
    apply_cpu_settings(device, cpu_threads_for(model, device),
                       resolve_cpu_matmul(experiment.runtime.cpu_matmul))
    data = RetrievalData.load(experiment.data, cache_dir=cache_dir)
    precision = resolve_precision(experiment.runtime.amp, device)
    return evaluate(model, data.eval, device, precision=precision)
