"""Optimizer and learning-rate scheduler from a config's `optimizer` / `lr_scheduler` blocks.

Both are validated before training starts: the block's shape, the type name, and the args,
by building the optimizer and scheduler on a one-element probe parameter and stepping them,
so that a bad value (a string learning rate, `step_size: 0`, three betas) is refused with a
ConfigError naming the key instead of failing with a traceback epochs later.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from crosskd.config import Config, ConfigError, require
from crosskd.train.fast_radam import SinglePassRAdam

# The original's vendored optimisers map onto the ones torch now ships; RAdam runs torch's
# RAdam through the fused Adam kernel once rectified (same results and state, faster).
_OPTIMIZERS = {"RAdam": SinglePassRAdam, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW,
               "SGD": torch.optim.SGD}
_SCHEDULERS = {"StepLR": torch.optim.lr_scheduler.StepLR,
               "MultiStepLR": torch.optim.lr_scheduler.MultiStepLR,
               "ExponentialLR": torch.optim.lr_scheduler.ExponentialLR}
#: what a constructor or a probe step raises for a bad argument value.
_ARG_ERRORS = (TypeError, ValueError, LookupError, ArithmeticError, RuntimeError)


def _lookup(table: dict, config: Config, block: str) -> tuple[type, dict[str, Any]]:
    """The class a block's `type` names and a copy of its `args`, or a ConfigError."""
    require(config, block, dict)
    name = require(config, f"{block}.type", str)
    cls = table.get(name)
    if cls is None:
        raise ConfigError(f"config {block}.type {name!r} is not supported; "
                          f"use one of {', '.join(sorted(table))}")
    return cls, dict(require(config, f"{block}.args", dict, default={}))


def _bad_args(block: str, args: dict[str, Any], err: Exception) -> ConfigError:
    """The ConfigError for args a constructor or a probe step rejected."""
    return ConfigError(f"config {block}.args {args!r:.120} are not valid for this "
                       f"{block} ({type(err).__name__}: {err}); fix or remove the offending value")


def _probe_optimizer(cls: type, args: dict[str, Any]) -> None:
    """Build `cls` over a fresh one-element parameter and step it twice with a gradient."""
    param = torch.nn.Parameter(torch.ones(1))
    optimizer = cls([param], **args)
    for _ in range(2):
        param.grad = torch.ones(1)
        optimizer.step()


def build_optimizer(config: Config, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The optimizer the config names (RAdam in the published configs) over trainable params."""
    cls, args = _lookup(_OPTIMIZERS, config, "optimizer")
    try:
        _probe_optimizer(cls, args)
    except _ARG_ERRORS as err:
        raise _bad_args("optimizer", args, err) from err
    return cls([p for p in params if p.requires_grad], **args)


def build_scheduler(config: Config,
                    optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate scheduler the config names (stepped once per epoch), or None."""
    if not config.get("lr_scheduler"):
        return None
    cls, args = _lookup(_SCHEDULERS, config, "lr_scheduler")
    try:
        probe = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=1.0)
        probe_scheduler = cls(probe, **args)
        for _ in range(3):
            probe.step()  # no gradient: a no-op that keeps the scheduler's order check quiet
            probe_scheduler.step()
    except _ARG_ERRORS as err:
        raise _bad_args("lr_scheduler", args, err) from err
    return cls(optimizer, **args)
