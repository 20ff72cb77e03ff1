"""Optimizer and learning-rate scheduler from a config's `optimizer` / `lr_scheduler` blocks."""

from __future__ import annotations

from typing import Iterable

import torch

from crosskd.config import Config, ConfigError

# The original's vendored optimisers map onto the ones torch now ships.
_OPTIMIZERS = {"RAdam": torch.optim.RAdam, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW,
               "SGD": torch.optim.SGD}
_SCHEDULERS = {"StepLR": torch.optim.lr_scheduler.StepLR,
               "MultiStepLR": torch.optim.lr_scheduler.MultiStepLR,
               "ExponentialLR": torch.optim.lr_scheduler.ExponentialLR}


def _lookup(table: dict, config: Config, block: str):
    spec = config.get(block)
    if not isinstance(spec, dict) or "type" not in spec:
        raise ConfigError(f"config key {block!r} must be an object with a 'type' and 'args'")
    cls = table.get(spec["type"])
    if cls is None:
        raise ConfigError(f"config {block}.type {spec['type']!r} is not supported; "
                          f"use one of {', '.join(sorted(table))}")
    return cls, dict(spec.get("args") or {})


def build_optimizer(config: Config, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The torch.optim optimizer the config names (RAdam in the published configs)."""
    cls, args = _lookup(_OPTIMIZERS, config, "optimizer")
    trainable = [p for p in params if p.requires_grad]
    return cls(trainable, **args)


def build_scheduler(config: Config,
                    optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate scheduler the config names (stepped once per epoch), or None."""
    if not config.get("lr_scheduler"):
        return None
    cls, args = _lookup(_SCHEDULERS, config, "lr_scheduler")
    return cls(optimizer, **args)
