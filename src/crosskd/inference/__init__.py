"""Inference as a library: load a trained model, embed videos and captions in chunks on any
device, score a split, fold QB-Norm's query bank.

Training's evaluation, `crosskd test`, `crosskd index`, search and the report all call this
layer; it sits above models, data, checkpoint and config and imports nothing of the
application (crosskd.train, crosskd.search, crosskd.commands).
"""

from crosskd.inference.embedding import (DEFAULT_CAPTION_CHUNK, default_caption_chunk,
                                         embed_captions, embed_videos, on_cpu)
from crosskd.inference.loading import load_model
from crosskd.inference.precision import Precision
from crosskd.inference.querybank import bank_split, scores_and_querybank, training_querybank
from crosskd.inference.scoring import SplitShards, score_split

__all__ = ["DEFAULT_CAPTION_CHUNK", "Precision", "SplitShards", "bank_split",
           "default_caption_chunk", "embed_captions", "embed_videos", "load_model", "on_cpu",
           "score_split", "scores_and_querybank", "training_querybank"]
