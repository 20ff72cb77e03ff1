"""What the data loader reads: the typed data part of a config (crosskd.config.data)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

DEFAULT_ROOT_FEAT_FOLDER = "high-quality/structured-symlinks"


@dataclass(frozen=True)
class DataSpec:
    """Dataset, split, experts (with the widths the model expects) and caption settings.

    `aggregation` holds each expert's `feat_aggregation` entry, which names its files;
    `variable` the experts stored as token sequences (pooled by the model); `teachers` the
    TeachText teacher files, empty unless `distil_loss` is on.
    """

    dataset_name: str
    data_dir: Path
    split_name: str
    modalities: tuple[str, ...]
    aggregation: Mapping[str, Mapping[str, Any]]
    variable: frozenset[str]
    max_tokens: Mapping[str, int]
    text_feat: str
    raw_input_dims: Mapping[str, int]
    text_dim: int
    shared_dim: int | None = None
    root_feat_folder: str = DEFAULT_ROOT_FEAT_FOLDER
    fuse_captions: bool = False
    num_test_captions: int = 1
    teachers: tuple[str, ...] = ()
    teacher_base_path: str = "teachers/"
