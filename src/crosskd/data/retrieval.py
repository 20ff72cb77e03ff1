"""`RetrievalData.from_config`: the training and evaluation splits a config describes."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from crosskd.data import layouts
from crosskd.data.batches import EvalSplit, TrainSplit
from crosskd.data.errors import DataError
from crosskd.data.features import gather_split
from crosskd.data.pickles import load_small_pickle
from crosskd.data.store import PackedFile, load_packed
from crosskd.models.dims import model_dims

log = logging.getLogger(__name__)

UNSUPPORTED_LOADER_OPTIONS = ("text_dropout", "restrict_train_captions", "caption_masks")


@dataclass
class RetrievalData:
    """The train and eval splits of one config, cut from one packed feature store."""

    train: TrainSplit
    eval: EvalSplit
    root: Path
    cache_dir: Path
    _tmp: Any = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], cache_dir: str | Path | None = None,
                    dtype: str = "float32") -> RetrievalData:
        """Read (or map from the cache) every file the config needs and check it.

        `cache_dir=None` packs into a temporary folder removed with this object; `dtype`
        "float16" halves the memory and disk of the packed features (batches stay float32).
        """
        if dtype not in ("float32", "float16"):
            raise DataError(f"feature dtype must be float32 or float16, not {dtype!r}")
        tmp = None
        if cache_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="crosskd-cache-")
            cache_dir = tmp.name
        loader = _Loader(config, Path(cache_dir), dtype)
        train, evaluation = loader.splits()
        return cls(train, evaluation, loader.root, Path(cache_dir), tmp)


class _Loader:
    """Resolves a config into packed files and builds both splits."""

    def __init__(self, config: Mapping[str, Any], cache_dir: Path, dtype: str) -> None:
        self.config = config
        self.args = config["data_loader"]["args"]
        self.layout = layouts.get_layout(self.args["dataset_name"])
        self.root = layouts.data_root(config)
        self.cache_dir = cache_dir
        self.dtype = dtype
        self.dims = model_dims(config)
        self.modalities = list(self.dims.modalities)
        self.aggregation = self.args.get("feat_aggregation") or {}
        self.max_tokens = dict(self.args.get("max_tokens") or {})
        self.variable = {m for m in self.modalities
                         if layouts.is_variable_length(self.aggregation.get(m, {}), m)}
        for name in [*self.variable, "text"]:
            if name not in self.max_tokens:
                raise DataError(f"config key data_loader.args.max_tokens.{name} is missing")
        self._refuse_unsupported_options()

    def _refuse_unsupported_options(self) -> None:
        """Options of the original that no published config turns on are refused, not ignored."""
        for key in UNSUPPORTED_LOADER_OPTIONS:
            if self.args.get(key):
                raise DataError(f"config key data_loader.args.{key} = {self.args[key]!r} is not "
                                "supported (no published config uses it); remove it or set "
                                "it to 0/null")
        for name in self.modalities:
            if (self.aggregation.get(name) or {}).get("binarise"):
                raise DataError(f"config key data_loader.args.feat_aggregation.{name}.binarise "
                                "is not supported (no published config uses it); set it to false")

    def _packed(self, relative: str, kind: str, what: str,
                max_rows: int | None = None) -> PackedFile:
        path = layouts.require_file(self.root / relative, what, self.layout)
        return load_packed(path, kind, self.cache_dir, self.dtype, max_rows)

    def _teacher_files(self) -> list[PackedFile]:
        if not self.config.get("distil_loss"):
            return []
        files = []
        for path in layouts.teacher_paths(self.config, self.root):
            layouts.require_file(path, f"TeachText teacher file {path.name} "
                                 "(distil_params.teachers)", self.layout)
            files.append(load_packed(path, "teacher", self.cache_dir, self.dtype))
        return files

    def splits(self) -> tuple[TrainSplit, EvalSplit]:
        """Build the train split and the evaluation split named by `split_name`."""
        split_name = self.args["split_name"]
        train_list, eval_list = layouts.split_lists(self.layout, split_name)
        train_ids = layouts.read_split_list(self.root / train_list, self.layout, split_name)
        eval_ids = layouts.read_split_list(self.root / eval_list, self.layout, split_name)
        experts = {}
        for name in self.modalities:
            max_rows = self.max_tokens[name] if name in self.variable else None
            experts[name] = [self._packed(rel, "expert", f"{name} expert file", max_rows)
                             for rel in layouts.expert_paths(self.layout, name, self.aggregation)]
        text_feat = self.config["experts"]["text_feat"]
        text = self._packed(layouts.text_feat_path(self.layout, text_feat), "captions",
                            f"{text_feat} text features", self.max_tokens["text"])
        teachers = self._teacher_files()
        shared = self.config["experts"].get("ce_shared_dim")

        def gather(ids: list[str], with_teachers: bool):
            return gather_split(ids, experts, self.variable, text,
                                teachers if with_teachers else [], self.dims.raw_input_dims,
                                self.dims.text_dim, shared)

        fuse = bool(self.args.get("fuse_captions", False))
        train = TrainSplit(gather(train_ids, True), self.max_tokens, self.modalities, fuse)
        choice = self._caption_choice(split_name, eval_ids)
        protocol = {"dataset": self.layout.name, "split": split_name}
        evaluation = EvalSplit(gather(eval_ids, False), self.max_tokens, self.modalities,
                               int(self.args.get("num_test_captions", 1)), fuse, choice,
                               protocol)
        log.info("%s %s: %d train videos, %d eval videos, %d queries", self.layout.name,
                 split_name, train.num_videos, evaluation.num_videos, evaluation.num_queries)
        return train, evaluation

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
