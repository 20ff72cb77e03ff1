"""Training and evaluation batches, cut from SplitFeatures by array indexing.

Content matches the original's collate: one random caption per training video (all captions
concatenated with `fuse_captions`), tokens truncated at `max_tokens` and zero-padded, missing
experts zeroed with availability 0; evaluation takes every caption slot of every video.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

import numpy as np
import torch

from crosskd.data.batch import Batch
from crosskd.data.features import Captions, SplitFeatures
from crosskd.data.mapped import release_mapped_pages
from crosskd.data.ragged import gather_rows, gather_segments
from crosskd.data.sampling import Draw
from crosskd.data.segments import SegmentVideos


def _expert_tensors(features: SplitFeatures, idx: np.ndarray, max_tokens: Mapping[str, int],
                    order: list[str]) -> tuple[dict, dict]:
    experts, ind = {}, {}
    for name in order:
        if name in features.fixed:
            experts[name] = torch.from_numpy(features.fixed[name][idx].astype(np.float32))
        else:
            ragged = features.variable[name]
            dense, _ = gather_rows(ragged.values, ragged.start[idx], ragged.rows[idx],
                                   max_tokens[name])
            experts[name] = torch.from_numpy(dense)
        ind[name] = torch.from_numpy(features.avail[name][idx].astype(np.float32))
    return experts, ind


def _caption_segments(captions: Captions, idx: np.ndarray, slots: int,
                      pick: np.ndarray | None, fuse: bool) -> tuple[np.ndarray, np.ndarray]:
    """Caption ids and owners (batch row * slots + slot) of the captions a batch uses."""
    first, num = captions.first[idx], captions.num[idx]
    if pick is not None:
        return first + pick, np.arange(len(idx)) * slots
    count = num if fuse else np.minimum(num, slots)
    total = int(count.sum())
    batch_row = np.repeat(np.arange(len(idx)), count)
    within = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    cap_ids = first[batch_row] + within
    owners = batch_row * slots + (0 if fuse else within)
    return cap_ids, owners


def _text_tensors(captions: Captions, cap_ids: np.ndarray, owners: np.ndarray, batch: int,
                  slots: int, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    dense, kept = gather_segments(captions.values, captions.cap_start[cap_ids],
                                  captions.cap_rows[cap_ids], owners, batch * slots, max_len)
    text = torch.from_numpy(dense.reshape(batch, slots, max_len, -1))
    return text, torch.from_numpy(kept.reshape(batch, slots).astype(np.float64))


class TrainSplit:
    """Training videos: the batches of draws (crosskd.data.sampling), cut on the host."""

    def __init__(self, features: SplitFeatures, max_tokens: Mapping[str, int],
                 modalities: list[str], fuse_captions: bool) -> None:
        self.features = features
        self.max_tokens = dict(max_tokens)
        self.modalities = modalities
        self.fuse_captions = fuse_captions

    @property
    def num_videos(self) -> int:
        """Number of training videos."""
        return len(self.features.video_ids)

    @property
    def video_ids(self) -> list[str]:
        """Training video ids in split-list order."""
        return self.features.video_ids

    @property
    def num_captions(self) -> np.ndarray:
        """Captions per training video."""
        return self.features.captions.num

    @property
    def sample_captions(self) -> bool:
        """Whether a batch samples one caption per video (else all are fused into one)."""
        return not self.fuse_captions

    def batch(self, draw: Draw) -> Batch:
        """The batch of a draw: its videos, each with its drawn caption (or all, fused)."""
        idx, pick = draw.videos, draw.captions
        captions = self.features.captions
        experts, ind = _expert_tensors(self.features, idx, self.max_tokens, self.modalities)
        cap_ids, owners = _caption_segments(captions, idx, 1,
                                            None if self.fuse_captions else pick,
                                            fuse=self.fuse_captions)
        text, token_mask = _text_tensors(captions, cap_ids, owners, len(idx), 1,
                                         self.max_tokens["text"])
        distil_video, distil_text = self._teachers(idx, pick)
        release_mapped_pages(self)  # the batch holds copies: the pages it read can go
        return Batch(experts=experts, ind=ind, text=text, text_token_mask=token_mask,
                     distil_video=distil_video, distil_text=distil_text,
                     video_ids=[self.features.video_ids[i] for i in idx])

    def _teachers(self, idx: np.ndarray, pick: np.ndarray) -> tuple[Any, Any]:
        """Teacher embeddings of the videos and of the same sampled caption."""
        if not self.features.teachers:
            return None, None
        video: dict[int, dict[str, torch.Tensor]] = {}
        text: dict[int, dict[str, torch.Tensor]] = {}
        for t, teacher in enumerate(self.features.teachers):
            video[t], text[t] = {}, {}
            for name, rows in teacher.vid_row.items():
                video[t][name] = torch.from_numpy(
                    np.asarray(teacher.values[rows[idx]], np.float32))
                caption_rows = teacher.text_row[name][idx] + pick
                text[t][name] = torch.from_numpy(
                    np.asarray(teacher.values[caption_rows], np.float32)[:, None, :])
        return video, text


class EvalSplit:
    """Evaluation videos: every caption slot of every video (or one fused / chosen caption);
    of a segmented dataset, with the source video of each of its items (segments)."""

    def __init__(self, features: SplitFeatures, max_tokens: Mapping[str, int],
                 modalities: list[str], num_test_captions: int, fuse_captions: bool,
                 caption_choice: np.ndarray | None, protocol: dict[str, Any],
                 segment_videos: SegmentVideos | None = None) -> None:
        self.features = features
        self.segment_videos = segment_videos
        self.max_tokens = dict(max_tokens)
        self.modalities = modalities
        self.slots = num_test_captions
        self.fuse_captions = fuse_captions
        self.caption_choice = caption_choice
        num = features.captions.num
        self.query_masks = np.zeros((len(num), self.slots), np.float64)
        if fuse_captions:
            self.query_masks[:] = 1
        elif caption_choice is not None:
            self.query_masks[:, 0] = 1
        else:
            self.query_masks[:] = np.arange(self.slots)[None, :] < num[:, None]
        self.protocol = {**protocol, "captions_per_video": self.slots,
                         "num_queries": self.num_queries}

    @property
    def video_ids(self) -> list[str]:
        """Evaluation video ids in split-list order."""
        return self.features.video_ids

    @property
    def num_videos(self) -> int:
        """Number of evaluation videos."""
        return len(self.features.video_ids)

    @property
    def num_queries(self) -> int:
        """Number of valid caption queries (sum of query_masks)."""
        return int(self.query_masks.sum())

    def batches(self, batch_size: int, videos: range | None = None) -> Iterator[Batch]:
        """All videos (or those of `videos`) in order, `batch_size` at a time."""
        videos = videos if videos is not None else range(self.num_videos)
        for begin in range(videos.start, videos.stop, batch_size):
            yield self.batch(np.arange(begin, min(begin + batch_size, videos.stop)))

    def batch(self, idx: np.ndarray) -> Batch:
        """The evaluation batch of the videos at positions `idx`."""
        idx = np.asarray(idx, np.int64)
        captions = self.features.captions
        experts, ind = _expert_tensors(self.features, idx, self.max_tokens, self.modalities)
        cap_ids, owners = self._segments(idx)
        text, token_mask = _text_tensors(captions, cap_ids, owners, len(idx), self.slots,
                                         self.max_tokens["text"])
        release_mapped_pages(self)  # the batch holds copies: the pages it read can go
        return Batch(experts=experts, ind=ind, text=text, text_token_mask=token_mask,
                     query_masks=torch.from_numpy(self.query_masks[idx]),
                     video_ids=[self.features.video_ids[i] for i in idx])

    def _segments(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Caption ids and slot owners of the videos at `idx` under this split's protocol."""
        choice = None
        if self.caption_choice is not None and not self.fuse_captions:
            choice = self.caption_choice[idx]
        return _caption_segments(self.features.captions, idx, self.slots, choice,
                                 fuse=self.fuse_captions)

    def text_token_mask(self) -> np.ndarray:
        """Tokens kept per caption slot for the whole split, `[V, C]`."""
        caps = self.features.captions
        cap_ids, owners = self._segments(np.arange(self.num_videos))
        kept = np.bincount(owners, weights=caps.cap_rows[cap_ids],
                           minlength=self.num_videos * self.slots)
        return np.minimum(kept, self.max_tokens["text"]).reshape(self.num_videos, self.slots)
