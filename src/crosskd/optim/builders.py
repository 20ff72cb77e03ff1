"""Optimizer and learning-rate scheduler from a config's `optimizer` / `lr_scheduler` blocks.

Both are checked when the config is parsed (`check_optimizer`, `check_scheduler`), before
training starts: the type name, and the args, by building the optimizer and scheduler on a
one-element probe parameter and stepping them, so that a bad value (a string learning rate,
`step_size: 0`, three betas) is refused with a ConfigError naming the key instead of
failing with a traceback epochs later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import torch

from crosskd.errors import ConfigError
from crosskd.optim.fast_radam import SinglePassRAdam
from crosskd.optim.ranger import Ranger

# The original's vendored optimisers map onto the ones torch now ships; RAdam runs torch's
# RAdam through the fused Adam kernel once rectified (same results and state, faster), and
# Ranger is torch's RAdam with our Lookahead (crosskd.optim.ranger).
OPTIMIZERS = {"RAdam": SinglePassRAdam, "Ranger": Ranger, "Adam": torch.optim.Adam,
              "AdamW": torch.optim.AdamW, "SGD": torch.optim.SGD}
SCHEDULERS = {"StepLR": torch.optim.lr_scheduler.StepLR,
              "MultiStepLR": torch.optim.lr_scheduler.MultiStepLR,
              "ExponentialLR": torch.optim.lr_scheduler.ExponentialLR}
#: what a constructor or a probe step raises for a bad argument value.
_ARG_ERRORS = (TypeError, ValueError, LookupError, ArithmeticError, RuntimeError)


@dataclass(frozen=True)
class OptimizerSpec:
    """A `type` name of `OPTIMIZERS` / `SCHEDULERS` and its keyword arguments."""

    type: str
    args: Mapping[str, Any] = field(default_factory=dict)


def _class(table: dict, spec: OptimizerSpec, block: str) -> type:
    cls = table.get(spec.type)
    if cls is None:
        raise ConfigError(f"config {block}.type {spec.type!r} is not supported; "
                          f"use one of {', '.join(sorted(table))}")
    return cls


def _bad_args(block: str, args: Mapping[str, Any], err: Exception) -> ConfigError:
    """The ConfigError for args a constructor or a probe step rejected."""
    return ConfigError(f"config {block}.args {dict(args)!r:.120} are not valid for this "
                       f"{block} ({type(err).__name__}: {err}); fix or remove the offending value")


def check_optimizer(spec: OptimizerSpec) -> None:
    """Build the optimizer over a fresh one-element parameter and step it twice."""
    cls = _class(OPTIMIZERS, spec, "optimizer")
    try:
        param = torch.nn.Parameter(torch.ones(1))
        optimizer = cls([param], **spec.args)
        for _ in range(2):
            param.grad = torch.ones(1)
            optimizer.step()
    except _ARG_ERRORS as err:
        raise _bad_args("optimizer", spec.args, err) from err


def check_scheduler(spec: OptimizerSpec) -> None:
    """Build the scheduler over a probe optimizer and step it three times."""
    cls = _class(SCHEDULERS, spec, "lr_scheduler")
    try:
        probe = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=1.0)
        probe_scheduler = cls(probe, **spec.args)
        for _ in range(3):
            probe.step()  # no gradient: a no-op that keeps the scheduler's order check quiet
            probe_scheduler.step()
    except _ARG_ERRORS as err:
        raise _bad_args("lr_scheduler", spec.args, err) from err


def build_optimizer(spec: OptimizerSpec, params: Iterable[torch.nn.Parameter]
                    ) -> torch.optim.Optimizer:
    """The optimizer `spec` names (RAdam in the published configs) over trainable params."""
    cls = _class(OPTIMIZERS, spec, "optimizer")
    return cls([p for p in params if p.requires_grad], **spec.args)


def build_scheduler(spec: OptimizerSpec | None, optimizer: torch.optim.Optimizer
                    ) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate scheduler `spec` names (stepped once per epoch), or None."""
    if spec is None:
        return None
    return _class(SCHEDULERS, spec, "lr_scheduler")(optimizer, **spec.args)
