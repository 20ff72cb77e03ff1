"""QB-Norm's query bank: every training caption scored against the videos, a chunk at a time.

The official code (ioanacroi/qb-norm) takes the similarity matrix of the training captions
against the test videos as its bank. Here the training split is read as an evaluation split
whose caption slots hold every caption of each training video (one fused query per video
with `fuse_captions`, as the test queries are then fused too), and its score rows are folded
into a `crosskd.qbnorm.QueryBank` a chunk at a time: the bank x videos matrix (MSRVTT 1k-A:
180,000 x 1,000) is never held. Evaluation (`test --qbnorm`) and the index
(`crosskd index --qbnorm`) both fold their bank here, so they normalise with the same numbers.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from crosskd.data.batches import EvalSplit, TrainSplit
from crosskd.data.retrieval import RetrievalData
from crosskd.errors import UserError
from crosskd.inference.embedding import default_caption_chunk, embed_videos
from crosskd.inference.precision import Precision
from crosskd.inference.scoring import score_against, score_rows
from crosskd.models.embeddings import VideoEmbedding
from crosskd.qbnorm import BankAccumulator, QueryBank

log = logging.getLogger(__name__)


def bank_split(train: TrainSplit) -> EvalSplit:
    """The training split as queries: every caption of every training video; a UserError
    when it has no caption (QB-Norm has no bank then)."""
    counts = np.asarray(train.num_captions)
    if not int(counts.sum()):
        raise UserError(f"QB-Norm needs the training split's captions as its query bank, but "
                        f"the training split ({train.num_videos} videos) has none; evaluate "
                        "without --qbnorm (or without the config's qbnorm key)")
    slots = 1 if train.fuse_captions else int(counts.max())
    bank = EvalSplit(train.features, train.max_tokens, train.modalities, slots,
                     train.fuse_captions, None, {"split": "train"})
    bank.query_masks[counts == 0] = 0  # a fused video without captions is no query
    return bank


def build_querybank(model: torch.nn.Module, bank: EvalSplit, video: VideoEmbedding,
                    device: torch.device, beta: float, caption_chunk: int) -> QueryBank:
    """Fold the bank's real queries (empty slots left out), scored against `video`, into a
    QueryBank; call it inside the precision's inference and autocast contexts."""
    accumulator = BankAccumulator(len(video), beta)
    valid = bank.query_masks.reshape(-1) > 0
    for start, scores in score_rows(model, bank, video, device, caption_chunk, desc="bank"):
        accumulator.add(scores.numpy()[valid[start:start + len(scores)]])
    return accumulator.result()


def training_querybank(model: torch.nn.Module, data: RetrievalData, video: VideoEmbedding,
                       device: torch.device, beta: float, caption_chunk: int | None = None,
                       precision: Precision = Precision()) -> QueryBank:
    """Every training caption of `data` as a bank query, folded against `video` (on
    `device`) as evaluation's QB-Norm folds them."""
    queries = bank_split(data.train)
    with precision.inference(), precision.autocast(device):
        return build_querybank(model, queries, video, device, beta,
                               caption_chunk or default_caption_chunk(device))


def scores_and_querybank(model: torch.nn.Module, data: RetrievalData, device: torch.device,
                         beta: float, caption_chunk: int | None = None,
                         precision: Precision = Precision()) -> tuple[np.ndarray, QueryBank]:
    """The evaluation split's similarity matrix and the training captions' QueryBank over
    its videos, which are embedded once for both."""
    model.eval()
    chunk = caption_chunk or default_caption_chunk(device)
    queries = bank_split(data.train)  # refused before any scoring when it has no caption
    with precision.inference(), precision.autocast(device):
        video = embed_videos(model, data.eval, device, chunk, precision)
        sims = score_against(model, data.eval, video, device, chunk).numpy()
        started = time.perf_counter()
        bank = build_querybank(model, queries, video, device, beta, chunk)
    log.info("QB-Norm bank: %d training captions against %d videos in %.1f s (beta %g, "
             "%d active videos)", bank.size, len(video), time.perf_counter() - started,
             bank.beta, int(bank.active.sum()))
    return sims, bank
