"""The draw order of training: which videos form each batch and which caption each gets.

One sampler owns every random draw of an epoch, whatever materialises the batches (host
arrays or tensors resident on a GPU): a permutation of the videos, then per batch one
caption index per video, all from one generator, in that order. So a run gives the same
batches on every path, and sharding an epoch across processes is a sampler change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence

import numpy as np

from crosskd.data.batch import Batch
from crosskd.data.segments import SegmentVideos

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Draw:
    """One training batch: video positions in the split, and a caption index within each
    video's captions (all 0 when captions are fused rather than sampled)."""

    videos: np.ndarray
    captions: np.ndarray


class TrainBatches(Protocol):
    """A training split that turns draws into batches (on the host or on a device)."""

    @property
    def num_videos(self) -> int: ...
    @property
    def video_ids(self) -> Sequence[str]: ...
    @property
    def num_captions(self) -> np.ndarray: ...
    @property
    def sample_captions(self) -> bool: ...
    def batch(self, draw: Draw) -> Batch: ...


class EvalBatches(Protocol):
    """An evaluation split: every caption slot of every video, in order; where its items
    are segments, the source video of each (`segment_videos`, else None)."""

    @property
    def num_videos(self) -> int: ...
    @property
    def video_ids(self) -> Sequence[str]: ...
    query_masks: np.ndarray
    protocol: dict
    segment_videos: SegmentVideos | None
    def batches(self, batch_size: int, videos: range | None = None) -> Iterator[Batch]: ...


class EpochSampler:
    """Batches of `batch_size` videos in a shuffled order, one random caption per video."""

    def __init__(self, num_captions: np.ndarray, batch_size: int,
                 sample_captions: bool = True) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.num_captions = np.asarray(num_captions)
        self.batch_size = batch_size
        self.sample_captions = sample_captions

    @classmethod
    def for_split(cls, split: TrainBatches, batch_size: int) -> EpochSampler:
        """The sampler of a training split."""
        return cls(split.num_captions, batch_size, split.sample_captions)

    @property
    def num_videos(self) -> int:
        """Videos drawn from per epoch."""
        return len(self.num_captions)

    def __len__(self) -> int:
        """Batches per epoch (a trailing batch of one video is skipped, see `epoch`)."""
        if self.batch_size == 1:  # every batch after the first is "a trailing single video"
            return min(1, self.num_videos)
        full, rest = divmod(self.num_videos, self.batch_size)
        return full + (rest > 1 or (rest == 1 and full == 0))

    def draw(self, videos: np.ndarray, rng: np.random.Generator) -> Draw:
        """The batch of `videos`, drawing one caption each from `rng` (none when fused)."""
        videos = np.asarray(videos, np.int64)
        if not self.sample_captions:
            return Draw(videos, np.zeros(len(videos), np.int64))
        return Draw(videos, rng.integers(0, self.num_captions[videos]))

    def epoch(self, rng: np.random.Generator, shuffle: bool = True) -> Iterator[Draw]:
        """One epoch of draws from `rng`.

        A trailing batch of a single video is skipped: batch norm cannot train on it (the
        original crashes there), and dropping it changes nothing else.
        """
        order = rng.permutation(self.num_videos) if shuffle else np.arange(self.num_videos)
        for begin in range(0, self.num_videos, self.batch_size):
            videos = order[begin:begin + self.batch_size]
            if len(videos) == 1 and begin > 0:
                log.debug("skipping a final training batch of one video (batch norm needs two)")
                return
            yield self.draw(videos, rng)


class ShardedSampler:
    """One rank's share of an `EpochSampler`'s epochs (distributed training).

    Every rank makes the same global draws from the same generator, then takes its
    contiguous slice of each batch, so each video is trained on once per epoch across the
    ranks and a run is reproducible. A trailing batch with fewer videos than ranks is
    skipped (after its draws, so the generator advances as on one process).
    """

    def __init__(self, sampler: EpochSampler, rank: int, world_size: int) -> None:
        self.sampler = sampler
        self.rank = rank
        self.world_size = world_size

    def __len__(self) -> int:
        """Global batches per epoch that every rank takes part in."""
        count = len(self.sampler)
        last = self.sampler.num_videos - (count - 1) * self.sampler.batch_size
        return count - (count > 0 and last < self.world_size)

    def epoch(self, rng: np.random.Generator, shuffle: bool = True) -> Iterator[Draw]:
        """This rank's slice of each global draw of one epoch from `rng`."""
        for draw in self.sampler.epoch(rng, shuffle):
            if len(draw.videos) < self.world_size:
                log.info("skipping a final training batch of %d video(s): fewer than the %d "
                         "processes", len(draw.videos), self.world_size)
                return
            rows = np.array_split(np.arange(len(draw.videos)), self.world_size)[self.rank]
            yield Draw(draw.videos[rows], draw.captions[rows])


def epoch_batches(split: TrainBatches, batch_size: int, rng: np.random.Generator,
                  shuffle: bool = True) -> Iterator[Batch]:
    """One epoch of `split`'s batches, drawn by its sampler."""
    for draw in EpochSampler.for_split(split, batch_size).epoch(rng, shuffle):
        yield split.batch(draw)
