"""Embed every video of a split once, then stream its captions through the model in chunks.

Memory stays bounded by the chunk size, not by the number of queries: the videos are
embedded first (`[V, E, D]`, small), then the captions of a few videos at a time are
embedded and scored at once against every video (the caption pages read are unmapped after
each chunk: crosskd.train.mapped). The scores are exactly those of embedding everything
first, since in evaluation mode every caption and video is embedded on its own.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import numpy as np
import torch
from tqdm import tqdm

from crosskd.data.batch import Batch
from crosskd.data.sampling import EvalBatches
from crosskd.models.embeddings import TextEmbedding, VideoEmbedding
from crosskd.models.similarity import cross_view_similarity
from crosskd.train.distributed import EvalShards
from crosskd.train.mapped import release_mapped_pages
from crosskd.train.precision import Precision

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


def score_rows(model: torch.nn.Module, captions: EvalBatches, video: VideoEmbedding,
               device: torch.device, caption_chunk: int, shard: range | None = None,
               desc: str = "captions") -> Iterator[tuple[int, torch.Tensor]]:
    """(first row, float32 CPU scores) of the caption slots of `captions` (video-major rows,
    of its `shard` if given) against `video`, a few videos' captions at a time.

    Call it inside the precision's inference and autocast contexts: the captions may come
    from another split than the videos (QB-Norm's bank), and the loop body stays in them."""
    model.eval()
    slots = int(np.asarray(captions.query_masks).shape[1])
    for start, batch in _chunks(captions, videos_per_chunk(captions, caption_chunk), desc,
                                shard):
        text = _float(model.embed_text(batch.text.to(device)))
        with torch.autocast(device.type, enabled=False):
            scores = cross_view_similarity(text, video)
        yield start * slots, scores.cpu()
        release_mapped_pages(captions)


def score_against(model: torch.nn.Module, captions: EvalBatches, video: VideoEmbedding,
                  device: torch.device, caption_chunk: int, shard: range | None = None
                  ) -> torch.Tensor:
    """The float32 CPU matrix of the caption slots of `captions` (of its `shard`) against
    `video`; call it inside the precision's inference and autocast contexts."""
    slots = int(np.asarray(captions.query_masks).shape[1])
    rows = len(shard) if shard is not None else captions.num_videos
    sims = torch.empty((rows * slots, len(video)), dtype=torch.float32)
    for start, scores in score_rows(model, captions, video, device, caption_chunk, shard):
        sims[start:start + len(scores)] = scores
    return sims


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
    shard = shards.videos(eval_split.num_videos) if shards is not None else None
    with precision.inference(), precision.autocast(device):
        video = embed_videos(model, eval_split, device, caption_chunk, precision, shard)
        if shard is not None:
            video = shards.gather_videos(video)
        sims = score_against(model, eval_split, video, device, caption_chunk, shard)
    if shard is not None:
        sims = shards.gather(sims.to(device), slots).cpu()
    return sims.numpy()
