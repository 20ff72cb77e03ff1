"""The training plan written beside an extracted dataset: config.json / config-cecap.json,
whole configs (no inherit_from) for train.py and test.py, derived from a shipped MSRVTT config.

A shipped config counts epochs of a collection of its own size; an own collection may be
ten times smaller or larger, so the plan counts optimizer steps: the base's steps on this
collection, held between MIN_STEPS and MAX_STEPS, in at most MAX_EPOCHS passes over the
training videos, with the base's learning-rate decay spread over the epochs that gives
(docs/PERFORMANCE.md, "Training length of generated configs").
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from crosskd.config import load_config
from crosskd.data.sampling import EpochSampler
from crosskd.extract.decode import DecodeSpec
from crosskd.extract.expert import Expert
from crosskd.shipped import config_dir
from crosskd.small_splits import warn_if_small

log = logging.getLogger(__name__)

#: the fewest optimizer steps a generated config trains for: the demo's 280 training videos
#: gained R@1 58 -> 75 -> 83 -> 88 -> 90 at 135, 300, 600, 1,200 and 2,400 steps.
MIN_STEPS = 1_200
#: the most: the published MSRVTT run (100 epochs of 102 batches), whose recipe the bases carry.
MAX_STEPS = 10_200
#: the most passes over the training videos: 45 videos gave R@1 88 at 150 and 300 epochs and
#: 78 at 600 (memorised); the longest published run is MSVD's 300 epochs.
MAX_EPOCHS = 300
#: on an exact tie of the monitored metric (frequent on a small validation split), the epoch
#: whose captions rank their videos higher on average is kept (crosskd.config.monitor).
TIE_BREAK = "min val_t2v_metrics_MeanR"


def generated_config(out: Path, experts: list[Expert], spec: DecodeSpec, text_feat: str,
                     max_tokens: dict[str, int], test_captions: int, base: str, *,
                     dataset: str, root_feat_folder: str, train_videos: int,
                     split_names: tuple[str, str]) -> dict[str, Any]:
    """A whole config (no inherit_from) for the dataset, from a shipped MSRVTT config."""
    config = load_config(config_dir() / base)
    config.pop("inherit_from", None)
    config["experts"]["modalities"] = [e.modality for e in experts]
    config["experts"]["text_feat"] = text_feat
    args = config["data_loader"]["args"]
    args.update({"data_dir": str(out.resolve()), "root_feat_folder": root_feat_folder,
                 "dataset_name": dataset, "split_name": split_names[0],
                 "num_test_captions": test_captions, "max_tokens": max_tokens,
                 "feat_aggregation": {e.modality: e.aggregation(spec.pixel_dim)
                                      for e in experts}})
    clusters = config["arch"]["args"]["vlad_clusters"]
    ghosts = config["arch"]["args"].setdefault("ghost_clusters", {})
    for expert in experts:
        if expert.output_kind == "tokens":
            clusters.setdefault(expert.modality, 8)
            ghosts.setdefault(expert.modality, 1)
    config["trainer"]["save_dir"] = str((out / "runs").resolve())
    config["trainer"]["monitor_tie_break"] = TIE_BREAK
    config["eval_settings"] = {"data_loader": {"args": {"split_name": split_names[1],
                                                        "num_test_captions": test_captions}}}
    return plan_training(config, train_videos)


def batches_per_epoch(train_videos: int, batch_size: int) -> int:
    """Optimizer steps per epoch, as the trainer's sampler draws them."""
    return len(EpochSampler(np.ones(train_videos, np.int64), batch_size))


def planned_epochs(base_epochs: int, batches: int) -> int:
    """Epochs for the base's steps held between MIN_STEPS and MAX_STEPS, at most MAX_EPOCHS."""
    steps = min(max(base_epochs * batches, MIN_STEPS), MAX_STEPS)
    return max(1, min(round(steps / batches), MAX_EPOCHS))


def plan_training(config: dict[str, Any], train_videos: int,
                  steps: int | None = None) -> dict[str, Any]:
    """`config` trained for the planned epochs (or about `steps` steps) on `train_videos`
    videos, its scheduler's per-epoch decay spread so the rate ends where it ended."""
    batches = batches_per_epoch(train_videos, config["data_loader"]["args"]["batch_size"])
    base_epochs = config["trainer"]["epochs"]
    epochs = (planned_epochs(base_epochs, batches) if steps is None
              else max(1, round(steps / batches)))
    config["trainer"]["epochs"] = epochs
    config["lr_scheduler"] = stretched_schedule(config.get("lr_scheduler"), base_epochs, epochs)
    return config


def stretched_schedule(scheduler: dict[str, Any] | None, base_epochs: int,
                       epochs: int) -> dict[str, Any] | None:
    """A per-epoch decay (`gamma`: StepLR, ExponentialLR) over `epochs` instead of
    `base_epochs`, with the same total decay."""
    if not scheduler or "gamma" not in scheduler.get("args", {}):
        return scheduler
    args = scheduler["args"]
    return {**scheduler, "args": {**args, "gamma": args["gamma"] ** (base_epochs / epochs)}}


def warn_small_splits(splits: dict[str, list[str]], unit: str = "video") -> None:
    """Log one line for each evaluation split too small to validate or test on (`unit`:
    what its items are, videos or segments)."""
    for split in ("val", "test"):
        warn_if_small(log, split, len(splits[split]), "add videos, or mark more of them "
                      f"{split} in the captions file's split column", unit)
