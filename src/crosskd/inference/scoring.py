"""Score a split: embed its videos once, then stream its captions through the model in chunks.

Memory stays bounded by the chunk size, not by the number of queries: the videos are
embedded first (`[V, E, D]`, small), then the captions of a few videos at a time are
embedded and scored at once against every video (crosskd.inference.embedding). The scores
are exactly those of embedding everything first, since in evaluation mode every caption and
video is embedded on its own.
"""

from __future__ import annotations

from typing import Iterator, Protocol

import numpy as np
import torch

from crosskd.data.sampling import EvalBatches
from crosskd.inference.embedding import default_caption_chunk, embed_captions, embed_videos
from crosskd.inference.precision import Precision
from crosskd.models.embeddings import VideoEmbedding
from crosskd.models.similarity import cross_view_similarity


class SplitShards(Protocol):
    """A split cut into one range of videos per process, and the gathering of what each
    process scores (crosskd.train.distributed.EvalShards under torchrun)."""

    def videos(self, total: int) -> range | None:
        """This process's videos of a split of `total` (None: the whole split)."""

    def gather(self, rows: torch.Tensor, per_video: int = 1) -> torch.Tensor:
        """Every process's `rows` (`per_video` rows for each of its videos), in order."""

    def gather_videos(self, video: VideoEmbedding) -> VideoEmbedding:
        """The embeddings of every process's videos."""


def score_rows(model: torch.nn.Module, captions: EvalBatches, video: VideoEmbedding,
               device: torch.device, caption_chunk: int, shard: range | None = None,
               desc: str = "captions") -> Iterator[tuple[int, torch.Tensor]]:
    """(first row, float32 CPU scores) of the caption slots of `captions` (video-major rows,
    of its `shard` if given) against `video`, a few videos' captions at a time.

    Call it inside the precision's inference and autocast contexts: the captions may come
    from another split than the videos (QB-Norm's bank), and the loop body stays in them."""
    slots = int(np.asarray(captions.query_masks).shape[1])
    for start, text in embed_captions(model, captions, device, caption_chunk, shard, desc):
        with torch.autocast(device.type, enabled=False):
            scores = cross_view_similarity(text, video)
        yield start * slots, scores.cpu()


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


def score_split(model: torch.nn.Module, split: EvalBatches, device: torch.device,
                caption_chunk: int | None = None, precision: Precision = Precision(),
                shards: SplitShards | None = None) -> np.ndarray:
    """The `[videos * slots, videos]` float32 similarity matrix of a split (video-major rows).

    Captions are embedded `caption_chunk` at a time and scored at once against all videos;
    no embedding of all captions is ever held. With `amp`, one autocast region spans the
    loop, so the weights are cast once, and the scores are float32 products of the embeddings.
    With `shards` (torchrun) each rank embeds and scores its own videos and captions, and
    the videos' embeddings and the score rows are gathered: every rank gets the whole matrix.
    """
    model.eval()
    caption_chunk = caption_chunk or default_caption_chunk(device)
    slots = int(np.asarray(split.query_masks).shape[1])
    shard = shards.videos(split.num_videos) if shards is not None else None
    with precision.inference(), precision.autocast(device):
        video = embed_videos(model, split, device, caption_chunk, precision, shard)
        if shard is not None:
            video = shards.gather_videos(video)
        sims = score_against(model, split, video, device, caption_chunk, shard)
    if shard is not None:
        sims = shards.gather(sims.to(device), slots).cpu()
    return sims.numpy()
