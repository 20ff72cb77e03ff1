"""Collaborative Experts retrieval models: build one from a config, embed, score."""

from crosskd.models.ce_net import CENet, build_model
from crosskd.models.embeddings import TextEmbedding, VideoEmbedding

__all__ = ["CENet", "TextEmbedding", "VideoEmbedding", "build_model"]
