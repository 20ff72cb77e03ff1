"""Embed a split's videos and captions with a trained model, a chunk of videos at a time.

Memory stays bounded by the chunk size: the caption pages a chunk read are unmapped after
it (crosskd.data.mapped), and only the embeddings the caller keeps are held. In evaluation
mode every caption and video is embedded on its own, so the chunking changes no number.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterator, TypeVar

import numpy as np
import torch
from tqdm import tqdm

from crosskd.data.batch import Batch
from crosskd.data.sampling import EvalBatches
from crosskd.inference.precision import Precision
from crosskd.models.embeddings import TextEmbedding, VideoEmbedding

#: captions embedded at once; bounds the token tensor (e.g. 240 x 37 x 1600 float32 = 57 MB)
#: and the NetVLAD intermediates of evaluation.
DEFAULT_CAPTION_CHUNK = 240
#: the same on a GPU, where every chunk costs hundreds of kernel launches and a few GB of
#: intermediates are cheap (MSRVTT's 497 x 5 validation captions then take one chunk).
GPU_CAPTION_CHUNK = 4096

Embedding = TypeVar("Embedding", TextEmbedding, VideoEmbedding)


def default_caption_chunk(device: torch.device) -> int:
    """Captions per chunk for embedding on `device`."""
    return GPU_CAPTION_CHUNK if device.type == "cuda" else DEFAULT_CAPTION_CHUNK


def videos_per_chunk(split: EvalBatches, caption_chunk: int) -> int:
    """How many videos' caption slots fit in one chunk of `caption_chunk` captions."""
    slots = int(np.asarray(split.query_masks).shape[1])
    return max(1, caption_chunk // max(1, slots))


def video_chunks(split: EvalBatches, videos: int, desc: str, shard: range | None = None
                 ) -> Iterator[tuple[int, Batch]]:
    """(first video index within `shard`, batch) over the split's videos of `shard` (all by
    default) in order."""
    start = 0
    total = len(shard) if shard is not None else split.num_videos
    for batch in tqdm(split.batches(videos, shard), desc=desc, leave=False, disable=None,
                      total=-(-total // videos)):
        yield start, batch
        start += len(batch.video_ids)


def _tensors_mapped(embedding: Embedding, change: Callable[[torch.Tensor], torch.Tensor]
                    ) -> Embedding:
    """The embedding with `change` applied to each of its floating-point tensors."""
    fields = {name: change(value) for name, value in vars(embedding).items()
              if isinstance(value, torch.Tensor) and value.is_floating_point()}
    return dataclasses.replace(embedding, **fields)


def as_float32(embedding: Embedding) -> Embedding:
    """The embedding with float32 tensors (autocast may leave bfloat16 ones)."""
    return _tensors_mapped(embedding, torch.Tensor.float)


def on_cpu(embedding: Embedding) -> Embedding:
    """The embedding with its tensors in host memory (what indexes and NumPy read)."""
    return _tensors_mapped(embedding, torch.Tensor.cpu)


def embed_videos(model: torch.nn.Module, split: EvalBatches, device: torch.device,
                 caption_chunk: int | None = None, precision: Precision = Precision(),
                 shard: range | None = None) -> VideoEmbedding:
    """Every video of a split (or of its `shard`) embedded once (float32, on `device`)."""
    model.eval()
    caption_chunk = caption_chunk or default_caption_chunk(device)
    parts = []
    with precision.inference(), precision.autocast(device):
        for _, batch in video_chunks(split, videos_per_chunk(split, caption_chunk), "videos",
                                     shard):
            experts = {name: value.to(device) for name, value in batch.experts.items()}
            ind = {name: value.to(device) for name, value in batch.ind.items()}
            parts.append(as_float32(model.embed_videos(experts, ind)))
    return VideoEmbedding.concat(parts)


def embed_captions(model: torch.nn.Module, split: EvalBatches, device: torch.device,
                   caption_chunk: int, shard: range | None = None, desc: str = "captions"
                   ) -> Iterator[tuple[int, TextEmbedding]]:
    """(first video index within `shard`, float32 embedding of its chunk's caption slots on
    `device`, video-major, empty slots included) over the split's videos (of `shard`).

    Call it inside the precision's inference and autocast contexts, which the caller holds
    over the whole loop (so autocast casts the weights once)."""
    model.eval()
    for start, batch in video_chunks(split, videos_per_chunk(split, caption_chunk), desc,
                                     shard):
        yield start, as_float32(model.embed_text(batch.text.to(device)))
