"""crosskd: video-text retrieval with Collaborative Experts and within-to-between distillation."""

__version__ = "0.1.0"
