"""Datasets on disk: layouts, safe pickle reading, the packed feature store, batches, synthesis."""

from crosskd.data.batch import Batch
from crosskd.data.retrieval import RetrievalData

__all__ = ["Batch", "RetrievalData"]
