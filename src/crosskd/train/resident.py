"""The training split held whole on the accelerator, so a batch is a few index operations there.

On a GPU, assembling each batch on the host (gathering ragged caption tokens, then copying
~15 MB per MSRVTT batch) takes longer than the training step itself. Here every video's
experts and every caption's tokens are gathered once into dense device tensors; batches
then index them. The draws come from the same sampler as host batches
(crosskd.data.sampling), so the batches (and the run) are the same.
Supported for one sampled caption per video without TeachText teachers; other configs use
the host batches.

Under bfloat16 autocast the caption tokens are held in bfloat16: the model only multiplies
them (NetVLAD's two matrix products), which autocast casts to bfloat16 anyway, so the run is
unchanged while the largest tensor halves (MSRVTT's 6,513 x 20 captions: 15 GB, not 31 GB).
"""

from __future__ import annotations

import logging
from typing import Iterator

import numpy as np
import torch

from crosskd.data.batch import Batch
from crosskd.data.batches import EvalSplit, TrainSplit
from crosskd.data.ragged import gather_segments
from crosskd.data.sampling import Draw

log = logging.getLogger(__name__)

#: videos gathered on the host at once while filling the device tensors.
FILL_CHUNK = 256
def resident_supported(split: TrainSplit) -> bool:
    """Whether `split`'s batches can be cut on the device (one caption, no teachers)."""
    return not split.fuse_captions and not split.features.teachers


def resident_bytes(split: TrainSplit, tokens: torch.dtype = torch.float32) -> int:
    """Device memory the dense training split needs (float32 experts and ind, caption tokens
    in `tokens`); the validation split, held too, is assumed to be smaller."""
    features = split.features
    videos = split.num_videos
    per_video = sum(array.shape[1] for array in features.fixed.values())
    per_video += sum(split.max_tokens[name] * ragged.values.shape[1]
                     for name, ragged in features.variable.items())
    per_video += len(split.modalities)
    captions = features.captions
    token_values = int(captions.num.max()) * split.max_tokens["text"] * captions.values.shape[1]
    return videos * (4 * per_video + token_values * tokens.itemsize)


class ResidentTrainSplit:
    """A TrainSplit's videos and captions as dense tensors on `device`."""

    def __init__(self, split: TrainSplit, device: torch.device,
                 tokens: torch.dtype = torch.float32) -> None:
        if not resident_supported(split):
            raise ValueError("resident batches need one sampled caption and no teachers")
        self.split = split
        self.device = device
        videos = split.num_videos
        self._num_captions = split.features.captions.num
        experts: dict[str, list[torch.Tensor]] = {}
        ind: dict[str, list[torch.Tensor]] = {}
        texts = []
        for begin in range(0, videos, FILL_CHUNK):
            idx = np.arange(begin, min(begin + FILL_CHUNK, videos))
            batch = split.batch(Draw(idx, np.zeros(len(idx), np.int64)))  # experts only
            for name in split.modalities:
                experts.setdefault(name, []).append(batch.experts[name].to(device))
                ind.setdefault(name, []).append(batch.ind[name].to(device))
            texts.append(torch.from_numpy(self._all_captions(idx)).to(device, tokens))
        self.experts = {name: torch.cat(parts) for name, parts in experts.items()}
        self.ind = {name: torch.cat(parts) for name, parts in ind.items()}
        self.text = torch.cat(texts)
        log.info("training split resident on %s: %d videos, %.2f GB", device, videos,
                 resident_bytes(split, tokens) / 1e9)

    @property
    def num_videos(self) -> int:
        """Number of training videos."""
        return self.split.num_videos

    def _all_captions(self, idx: np.ndarray) -> np.ndarray:
        """`[len(idx), max captions, max tokens, D]` tokens of every caption of the videos."""
        captions = self.split.features.captions
        slots = int(self._num_captions.max())
        num = captions.num[idx]
        owner_video = np.repeat(np.arange(len(idx)), num)
        within = np.arange(int(num.sum())) - np.repeat(np.cumsum(num) - num, num)
        cap_ids = captions.first[idx][owner_video] + within
        dense, _ = gather_segments(captions.values, captions.cap_start[cap_ids],
                                   captions.cap_rows[cap_ids], owner_video * slots + within,
                                   len(idx) * slots, self.split.max_tokens["text"])
        return dense.reshape(len(idx), slots, *dense.shape[1:])

    @property
    def video_ids(self) -> list[str]:
        """Training video ids in split-list order."""
        return self.split.video_ids

    @property
    def num_captions(self) -> np.ndarray:
        """Captions per training video."""
        return self._num_captions

    @property
    def sample_captions(self) -> bool:
        """Always: resident batches hold one sampled caption per video."""
        return True

    def batch(self, draw: Draw) -> Batch:
        """The batch of a draw, indexed out of the device tensors."""
        rows = torch.from_numpy(draw.videos).to(self.device, non_blocking=True)
        picks = torch.from_numpy(draw.captions).to(self.device, non_blocking=True)
        return Batch(experts={name: value[rows] for name, value in self.experts.items()},
                     ind={name: value[rows] for name, value in self.ind.items()},
                     text=self.text[rows, picks][:, None], text_token_mask=torch.zeros(0),
                     video_ids=[self.split.video_ids[i] for i in draw.videos])


class ResidentEvalSplit:
    """An EvalSplit's batches held on `device` (validated every epoch, gathered once)."""

    def __init__(self, split: EvalSplit, device: torch.device,
                 tokens: torch.dtype = torch.float32) -> None:
        self.query_masks = split.query_masks
        self.protocol = split.protocol
        self.segment_videos = split.segment_videos
        self.video_ids = split.video_ids
        parts = []
        for batch in split.batches(FILL_CHUNK):
            part = batch.to(device)
            part.text = part.text.to(tokens)  # one chunk at a time in float32
            parts.append(part)
        self.experts = {name: torch.cat([p.experts[name] for p in parts])
                        for name in parts[0].experts}
        self.ind = {name: torch.cat([p.ind[name] for p in parts]) for name in parts[0].ind}
        self.text = torch.cat([p.text for p in parts])
        self.text_token_mask = torch.cat([p.text_token_mask for p in parts])

    @property
    def num_videos(self) -> int:
        """Number of evaluation videos."""
        return len(self.video_ids)

    def batches(self, batch_size: int, videos: range | None = None) -> Iterator[Batch]:
        """All videos (or those of `videos`) in order, `batch_size` at a time (views of the
        device tensors)."""
        videos = videos if videos is not None else range(self.num_videos)
        for begin in range(videos.start, videos.stop, batch_size):
            rows = slice(begin, min(begin + batch_size, videos.stop))
            yield Batch(experts={name: value[rows] for name, value in self.experts.items()},
                        ind={name: value[rows] for name, value in self.ind.items()},
                        text=self.text[rows], text_token_mask=self.text_token_mask[rows],
                        query_masks=torch.from_numpy(np.asarray(self.query_masks[rows])),
                        video_ids=list(self.video_ids[rows]))
