"""`RetrievalData.load`: the training and evaluation splits a config's data part describes."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crosskd.data import layouts
from crosskd.data.batches import EvalSplit, TrainSplit
from crosskd.data.errors import DataError
from crosskd.data.features import gather_split
from crosskd.data.pickles import load_small_pickle
from crosskd.data.segments import SegmentVideos, read_segments
from crosskd.data.spec import DataSpec
from crosskd.data.store import PackedFile, load_packed
from crosskd.data.text_sources import captions_for, rekeyed
from crosskd.small_splits import warn_if_small

log = logging.getLogger(__name__)


@dataclass
class RetrievalData:
    """The train and eval splits of one config, cut from one packed feature store."""

    train: TrainSplit
    eval: EvalSplit
    root: Path
    cache_dir: Path
    _tmp: Any = None

    @classmethod
    def load(cls, spec: DataSpec, cache_dir: str | Path | None = None,
             dtype: str = "float32") -> RetrievalData:
        """Read (or map from the cache) every file the data part needs and check it.

        `cache_dir=None` packs into a temporary folder removed with this object; `dtype`
        "float16" halves the memory and disk of the packed features (batches stay float32).
        """
        if dtype not in ("float32", "float16"):
            raise DataError(f"feature dtype must be float32 or float16, not {dtype!r}")
        tmp = None
        if cache_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="crosskd-cache-")
            cache_dir = tmp.name
        loader = _Loader(spec, Path(cache_dir), dtype)
        train, evaluation = loader.splits()
        return cls(train, evaluation, loader.root, Path(cache_dir), tmp)


def load_collection(spec: DataSpec, cache_dir: str | Path, dtype: str = "float32") -> EvalSplit:
    """Every video of the dataset's expert files, in a split list or not, as one evaluation
    split whose caption slots hold all captions of each video (none for a video without
    any): a whole collection, as a search index embeds it."""
    return _Loader(spec, Path(cache_dir), dtype).collection()


class _Loader:
    """Resolves a data part into packed files and builds both splits."""

    def __init__(self, spec: DataSpec, cache_dir: Path, dtype: str) -> None:
        self.spec = spec
        self.layout = layouts.get_layout(spec.dataset_name)
        self.root = layouts.data_root(spec)
        self.cache_dir = cache_dir
        self.dtype = dtype
        self.modalities = list(spec.modalities)
        self.max_tokens = dict(spec.max_tokens)

    def _packed(self, relative: str, kind: str, what: str,
                max_rows: int | None = None) -> PackedFile:
        path = layouts.require_file(self.root / relative, what, self.layout)
        return load_packed(path, kind, self.cache_dir, self.dtype, max_rows)

    def _teacher_files(self) -> list[PackedFile]:
        files = []
        for path in layouts.teacher_paths(self.spec, self.root):
            layouts.require_file(path, f"TeachText teacher file {path.name} "
                                 "(distil_params.teachers)", self.layout)
            files.append(load_packed(path, "teacher", self.cache_dir, self.dtype))
        return files

    def _experts(self, split_name: str) -> dict[str, list[PackedFile]]:
        """Each expert's packed files."""
        spec = self.spec
        experts = {}
        for name in self.modalities:
            max_rows = self.max_tokens[name] if name in spec.variable else None
            experts[name] = [self._packed(rel, "expert", f"{name} expert file", max_rows)
                             for rel in layouts.expert_paths(self.layout, name, spec.aggregation,
                                                             split_name)]
        return experts

    def collection(self) -> EvalSplit:
        """Every video of the first expert file, each caption of each in a slot of its own
        (one fused slot with `fuse_captions`); a video without captions has no query."""
        spec = self.spec
        experts = self._experts(spec.split_name)
        video_ids = sorted(next(iter(experts.values()))[0].keys)
        features = gather_split(video_ids, experts, set(spec.variable),
                                captions_for(self._text_files(spec.split_name), video_ids), [],
                                dict(spec.raw_input_dims), spec.text_dim, spec.shared_dim,
                                captions_optional=True)
        counts = features.captions.num
        slots = 1 if spec.fuse_captions else max(1, int(counts.max()))
        split = EvalSplit(features, self.max_tokens, self.modalities, slots, spec.fuse_captions,
                          None, {"dataset": self.layout.name, "split": None})
        split.query_masks[counts == 0] = 0
        return split

    def splits(self) -> tuple[TrainSplit, EvalSplit]:
        """Build the train split and the evaluation split named by `split_name`."""
        spec = self.spec
        split_name = spec.split_name
        train_list, eval_list = layouts.split_lists(self.layout, split_name)
        train_ids = layouts.read_split_list(self.root / train_list, self.layout, split_name)
        eval_ids = layouts.read_split_list(self.root / eval_list, self.layout, split_name)
        experts = self._experts(split_name)
        texts = self._text_files(split_name)
        teachers = self._teacher_files()

        def gather(ids: list[str], with_teachers: bool):
            return gather_split(ids, experts, set(spec.variable), captions_for(texts, ids),
                                teachers if with_teachers else [], dict(spec.raw_input_dims),
                                spec.text_dim, spec.shared_dim)

        fuse = spec.fuse_captions
        train = TrainSplit(gather(train_ids, True), self.max_tokens, self.modalities, fuse)
        choice = self._caption_choice(split_name, eval_ids)
        protocol = {"dataset": self.layout.name, "split": split_name}
        evaluation = EvalSplit(gather(eval_ids, False), self.max_tokens, self.modalities,
                               spec.num_test_captions, fuse, choice,
                               protocol, self._segment_videos(experts, eval_ids))
        log.info("%s %s: %d train videos, %d eval videos, %d queries", self.layout.name,
                 split_name, train.num_videos, evaluation.num_videos, evaluation.num_queries)
        warn_if_small(log, split_name, evaluation.num_videos,
                      unit="video" if evaluation.segment_videos is None else "segment")
        return train, evaluation

    def _segment_videos(self, experts: dict[str, list[PackedFile]], eval_ids: list[str]
                        ) -> SegmentVideos | None:
        """The source video of each evaluation item, where the dataset is segmented (its
        segments.json names every item of the expert files it lists)."""
        items = frozenset(next(iter(experts.values()))[0].keys)
        table = read_segments(self.root, items)
        return table.videos_of(eval_ids) if table is not None else None

    def _text_files(self, split_name: str) -> list[PackedFile]:
        """The caption features of the split: one file, or the files merged in order."""
        text_feat = self.spec.text_feat
        files = [self._packed(rel, "captions", f"{text_feat} text features",
                              self.max_tokens["text"])
                 for rel in layouts.text_feat_paths(self.layout, text_feat, split_name)]
        if text_feat in self.layout.youtube_keyed_text_feats:
            (name,) = self.layout.extra_files
            path = layouts.require_file(self.root / name, "YouTube name of each video",
                                        self.layout)
            names = {str(yt): str(vid) for vid, yt in load_small_pickle(path).items()}
            files = [rekeyed(packed, names, name) for packed in files]
        return files

    def _caption_choice(self, split_name: str, eval_ids: list[str]) -> np.ndarray | None:
        """The 1k-A protocol's one caption index per test video, else None."""
        name = self.layout.caption_index_files.get(split_name)
        if name is None:
            return None
        path = layouts.require_file(self.root / name, f"caption index file for split "
                                    f"{split_name!r}", self.layout)
        chosen = load_small_pickle(path)
        try:
            return np.array([int(chosen[v]) for v in eval_ids], np.int64)
        except KeyError as err:
            raise DataError(f"{path}: no caption index for video {err.args[0]!r}") from None
