"""The query bank of `crosskd index --qbnorm`: captions scored against the indexed videos and
folded into each video's QB-Norm normaliser and activation (crosskd.qbnorm).

By default the bank is every caption of the dataset's training split, read and scored exactly
as `test --qbnorm` reads and scores it (crosskd.inference.querybank), so an index and
evaluation normalise with the same numbers. A captions file (`--qbnorm-bank FILE`, any format
`crosskd extract --captions` reads) is encoded by the dataset's recorded text encoder and
embedded by the model's text side, as free-text queries are. Either way the bank x videos matrix is never
held: its rows are folded a chunk at a time.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from crosskd.data.retrieval import RetrievalData
from crosskd.errors import UserError
from crosskd.inference import DEFAULT_CAPTION_CHUNK, on_cpu, training_querybank
from crosskd.models import CENet
from crosskd.models.embeddings import VideoEmbedding
from crosskd.models.similarity import cross_view_similarity
from crosskd.qbnorm import DEFAULT_BETA, BankAccumulator, QueryBank
from crosskd.search.text_side import TextSide

log = logging.getLogger(__name__)

NO_ENCODER = ("--qbnorm-bank {path}: the captions of a file are encoded by the dataset's text "
              "encoder, and this dataset records none that is available here (published "
              "features); leave out --qbnorm-bank to use the training captions as the bank")


@dataclass(frozen=True)
class BankChoice:
    """What `crosskd index --qbnorm` was asked for: beta, and a captions file (None: the
    training captions of the dataset)."""

    beta: float = DEFAULT_BETA
    captions: Path | None = None

    def describe(self, data: RetrievalData) -> str:
        """Where the bank came from, as the index's info records it."""
        if self.captions is None:
            return f"the training split's captions ({data.train.num_videos} videos)"
        return f"captions file {self.captions.name}"


def querybank(choice: BankChoice, model: CENet, data: RetrievalData, text_side: TextSide,
              video: VideoEmbedding, device: torch.device) -> QueryBank:
    """The bank `choice` names, folded against the indexed videos `video` (embedded by
    `model` on `device`)."""
    started = time.perf_counter()
    if choice.captions is None:
        bank = training_querybank(model, data, video, device, choice.beta)
    else:
        bank = caption_file_bank(text_side, choice.captions, on_cpu(video), choice.beta)
    log.info("QB-Norm bank: %d captions against %d videos in %.1f s (beta %g, %d active "
             "videos)", bank.size, len(video), time.perf_counter() - started, bank.beta,
             int(bank.active.sum()))
    return bank


def caption_file_bank(text_side: TextSide, path: Path, video: VideoEmbedding, beta: float
                      ) -> QueryBank:
    """Every caption of a captions file as a bank query, through the text encoder."""
    if not text_side.free_text:
        raise UserError(NO_ENCODER.format(path=path))
    from crosskd.extract.captions import read_captions

    captions = [text for text in read_captions(path).texts() if text.strip()]
    accumulator = BankAccumulator(len(video), beta)
    skipped = 0
    for start in range(0, len(captions), DEFAULT_CAPTION_CHUNK):
        features = [f for f in text_side.encode(captions[start:start + DEFAULT_CAPTION_CHUNK])
                    if len(f)]
        skipped += min(DEFAULT_CAPTION_CHUNK, len(captions) - start) - len(features)
        if features:
            with torch.inference_mode():
                scores = cross_view_similarity(text_side.embed_many(features), video)
            accumulator.add(scores.numpy())
    if skipped:
        log.warning("--qbnorm-bank %s: %d captions gave no token (left out of the bank)",
                    path, skipped)
    try:
        return accumulator.result()
    except ValueError:
        raise UserError(f"--qbnorm-bank {path}: no caption of the file gave a token; the bank "
                        "is empty") from None
