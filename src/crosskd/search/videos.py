"""The videos an index holds: a published dataset's evaluation split (or the --split asked
for), or every video of an own collection (`crosskd extract`): captioned or not, in a split
or in none. A collection is what a user searches; splits are for training and evaluation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crosskd.config import ExperimentConfig, apply_overrides
from crosskd.data import layouts
from crosskd.data.batches import EvalSplit
from crosskd.data.retrieval import RetrievalData, load_collection
from crosskd.datasets import DATASETS
from crosskd.datasets.catalogue import OWN_VIDEOS
from crosskd.errors import UserError
from crosskd.search.media_sources import RECORD
from crosskd.untrusted import json_object_file


@dataclass
class Videos:
    """What an index embeds: `split` (the videos, with their captions), `root` (the feature
    folder: raw captions), the collection's `name`, the split indexed (None: every video),
    and the dataset's splits once loaded (QB-Norm's default bank is their training captions)
    from the packed-feature cache `cache_dir`."""

    split: EvalSplit
    root: Path
    name: str
    split_name: str | None
    data: RetrievalData | None = None
    cache_dir: Path | None = None

    @classmethod
    def evaluation(cls, experiment: ExperimentConfig, data: RetrievalData,
                   record: dict[str, Any]) -> "Videos":
        """The evaluation split of `data`, the dataset `experiment` reads."""
        return cls(data.eval, data.root, collection_name(experiment, record),
                   experiment.data.split_name, data)

    def training_data(self, experiment: ExperimentConfig) -> RetrievalData:
        """The dataset's splits, whose training captions are QB-Norm's default bank."""
        if self.data is None:
            if not self.split.query_masks.any():
                raise UserError(f"--qbnorm: {self.name} has no captions, so no training "
                                "captions for a query bank; give bank captions with "
                                "--qbnorm-bank FILE")
            self.data = RetrievalData.load(experiment.data, self.cache_dir)
        return self.data


def open_videos(experiment: ExperimentConfig, record: dict[str, Any], whole_collection: bool,
                cache_dir: Path) -> Videos:
    """Every video of an own collection when `whole_collection`, else (and for a published
    dataset always) the config's split."""
    spec = experiment.data
    if whole_collection and spec.dataset_name == OWN_VIDEOS.name:
        return Videos(load_collection(spec, cache_dir), layouts.data_root(spec),
                      collection_name(experiment, record), None, cache_dir=cache_dir)
    return Videos.evaluation(experiment, RetrievalData.load(spec, cache_dir), record)


def collection_name(experiment: ExperimentConfig, record: dict[str, Any]) -> str:
    """An own collection's recorded name (else its folder's), a published dataset's name."""
    spec = experiment.data
    if spec.dataset_name != OWN_VIDEOS.name:
        return spec.dataset_name
    name = record.get("name")
    return name if isinstance(name, str) and name.strip() else spec.data_dir.resolve().name


def extraction_record(data_dir: Path) -> dict[str, Any]:
    """What `crosskd extract` recorded about an own-video dataset ({} for published features)."""
    return json_object_file(data_dir / RECORD, "", "is not an extraction record (a JSON "
                            "object); run crosskd extract again") or {}


def as_dataset_of_folder(config: dict[str, Any], split: str | None) -> dict[str, Any]:
    """`config` reading its data folder as the dataset the folder's extraction record says it
    is (own videos), whatever dataset the model was trained on; its split, unless `split`
    was asked for, one of that dataset's (an index of the whole collection reads none)."""
    args = (config.get("data_loader") or {}).get("args") or {}
    if not isinstance(args.get("data_dir"), str):
        return config  # refused with the config's other errors
    dataset = extraction_record(Path(args["data_dir"])).get("dataset_name")
    if dataset not in DATASETS or dataset == args.get("dataset_name"):
        return config
    changes = {"dataset_name": dataset}
    splits = DATASETS[dataset].layout.splits
    if split is None and args.get("split_name") not in splits:
        changes["split_name"] = next(iter(splits))
    return apply_overrides(config, [(f"data_loader.args.{key}", json.dumps(value))
                                    for key, value in changes.items()])
