"""The training split held whole on the accelerator, so a batch is a few index operations there.

On a GPU, assembling each batch on the host (gathering ragged caption tokens, then copying
~15 MB per MSRVTT batch) takes longer than the training step itself. Here every video's
experts and every caption's tokens are gathered once into dense device tensors; batches
then index them, drawing the permutation and the caption choices from the same generator
calls as `crosskd.data.batches.TrainSplit.batches`, so the batches (and the run) are the same.
Supported for one sampled caption per video without TeachText teachers; other configs use
the host batches.

Under bfloat16 autocast the caption tokens are held in bfloat16: the model only multiplies
them (NetVLAD's two matrix products), which autocast casts to bfloat16 anyway, so the run is
unchanged while the largest tensor halves (MSRVTT's 6,513 x 20 captions: 15 GB, not 31 GB).
"""

from __future__ import annotations

import logging
from typing import Any, Iterator

import numpy as np
import torch

from crosskd.config import ConfigError
from crosskd.data.batch import Batch
from crosskd.data.batches import TrainSplit, epoch_order
from crosskd.data.ragged import gather_segments

log = logging.getLogger(__name__)

#: videos gathered on the host at once while filling the device tensors.
FILL_CHUNK = 256
#: the share of free device memory the split may take in "auto" mode.
AUTO_MEMORY_SHARE = 0.5


def supported(split: TrainSplit) -> bool:
    """Whether `split`'s batches can be cut on the device (one caption, no teachers)."""
    return not split.fuse_captions and not split.features.teachers


def token_dtype(config: dict[str, Any]) -> torch.dtype:
    """The dtype resident caption tokens are held in: bfloat16 under bf16 autocast."""
    return torch.bfloat16 if (config.get("trainer") or {}).get("amp") == "bf16" else torch.float32


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


def wants_resident(config: dict[str, Any], split: TrainSplit, device: torch.device) -> bool:
    """`trainer.resident_data`: "auto" (default: on a GPU when it fits), true or false."""
    setting = (config.get("trainer") or {}).get("resident_data", "auto")
    if setting not in ("auto", True, False):
        raise ConfigError(f"config key trainer.resident_data: {setting!r} is not \"auto\", "
                          "true or false")
    if setting is False or not supported(split):
        if setting is True:
            raise ConfigError("config key trainer.resident_data: true needs one sampled "
                              "caption per video and no TeachText teachers (distil_loss)")
        return False
    if setting is True:
        return True
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return 2 * resident_bytes(split, token_dtype(config)) < AUTO_MEMORY_SHARE * free


class ResidentTrainSplit:
    """A TrainSplit's videos and captions as dense tensors on `device`."""

    def __init__(self, split: TrainSplit, device: torch.device,
                 tokens: torch.dtype = torch.float32) -> None:
        if not supported(split):
            raise ValueError("resident batches need one sampled caption and no teachers")
        self.split = split
        self.device = device
        videos = split.num_videos
        self.num_captions = split.features.captions.num
        experts: dict[str, list[torch.Tensor]] = {}
        ind: dict[str, list[torch.Tensor]] = {}
        texts = []
        for begin in range(0, videos, FILL_CHUNK):
            idx = np.arange(begin, min(begin + FILL_CHUNK, videos))
            batch = split.batch(idx, np.random.default_rng(0))  # experts; its caption unused
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
        slots = int(self.num_captions.max())
        num = captions.num[idx]
        owner_video = np.repeat(np.arange(len(idx)), num)
        within = np.arange(int(num.sum())) - np.repeat(np.cumsum(num) - num, num)
        cap_ids = captions.first[idx][owner_video] + within
        dense, _ = gather_segments(captions.values, captions.cap_start[cap_ids],
                                   captions.cap_rows[cap_ids], owner_video * slots + within,
                                   len(idx) * slots, self.split.max_tokens["text"])
        return dense.reshape(len(idx), slots, *dense.shape[1:])

    def batches(self, batch_size: int, rng: np.random.Generator,
                shuffle: bool = True) -> Iterator[Batch]:
        """One epoch, the same batches TrainSplit.batches draws from `rng`."""
        for idx in epoch_order(self.num_videos, batch_size, rng, shuffle):
            pick = rng.integers(0, self.num_captions[idx])
            rows = torch.from_numpy(idx).to(self.device, non_blocking=True)
            picks = torch.from_numpy(pick).to(self.device, non_blocking=True)
            yield Batch({name: value[rows] for name, value in self.experts.items()},
                        {name: value[rows] for name, value in self.ind.items()},
                        self.text[rows, picks][:, None], torch.zeros(0), None, None, None,
                        [self.split.video_ids[i] for i in idx])


class ResidentEvalSplit:
    """An EvalSplit's batches held on `device` (validated every epoch, gathered once)."""

    def __init__(self, split: Any, device: torch.device,
                 tokens: torch.dtype = torch.float32) -> None:
        self.query_masks = split.query_masks
        self.protocol = split.protocol
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

    def batches(self, batch_size: int) -> Iterator[Batch]:
        """All videos in order, `batch_size` at a time (views of the device tensors)."""
        for begin in range(0, self.num_videos, batch_size):
            rows = slice(begin, begin + batch_size)
            yield Batch({name: value[rows] for name, value in self.experts.items()},
                        {name: value[rows] for name, value in self.ind.items()},
                        self.text[rows], self.text_token_mask[rows],
                        torch.from_numpy(np.asarray(self.query_masks[rows])), None, None,
                        list(self.video_ids[rows]))
