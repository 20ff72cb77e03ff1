"""Optimizer and learning-rate scheduler from a config's `optimizer` / `lr_scheduler` blocks.

Both are checked when the config is parsed (`check_optimizer`, `check_scheduler`), before
training starts: the type name; the argument names, against the class's signature (a typo
names the closest argument); and the values, by building the optimizer and scheduler on a
one-element probe parameter and stepping them, so that a bad value (a string learning rate,
`step_size: 0`, three betas) is refused with a ConfigError naming the key instead of
failing with a traceback epochs later.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import torch

from crosskd.errors import ConfigError
from crosskd.untrusted import terminal_safe
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


def _fails(build: Callable[[Mapping[str, Any]], None], args: Mapping[str, Any]
           ) -> Exception | None:
    """What building (and stepping) with `args` raised, or None when it worked."""
    try:
        build(args)
    except _ARG_ERRORS as err:
        return err
    return None


def _accepted(cls: type) -> tuple[list[str], list[str], bool]:
    """(keyword arguments, those without a default, whether **kwargs is taken) of `cls`
    after its first parameter (the parameters, or the optimizer of a scheduler)."""
    _, *params = inspect.signature(cls).parameters.values()
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return ([p.name for p in named], [p.name for p in named if p.default is p.empty],
            any(p.kind is p.VAR_KEYWORD for p in params))


def _check_names(cls: type, spec: OptimizerSpec, block: str) -> list[str]:
    """Refuse argument names `cls` does not take (each with the closest it does) and
    required ones left out, before torch's TypeError can; returns the required names."""
    accepted, required, open_ended = _accepted(cls)
    unknown = [] if open_ended else [name for name in spec.args if name not in accepted]
    if unknown:
        keys = ", ".join(f"{block}.args.{terminal_safe(str(name))}" for name in unknown)
        if len(unknown) == 1:
            shown, hint = _with_closest(str(unknown[0]), accepted)
            raise ConfigError(f"config key {keys}: {spec.type} takes no argument {shown}; "
                              f"{hint}")
        named = ", ".join("{} ({})".format(*_with_closest(str(name), accepted))
                          for name in unknown)
        raise ConfigError(f"config keys {keys}: {spec.type} takes no arguments {named}")
    missing = [name for name in required if name not in spec.args]
    if missing:
        raise ConfigError(f"config key {block}.args.{missing[0]} is missing: {spec.type} "
                          "needs it")
    return required


def _with_closest(name: str, accepted: list[str]) -> tuple[str, str]:
    """An unknown argument as shown, and the hint: the closest name, else all of them."""
    close = difflib.get_close_matches(name, accepted, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else f"it takes {', '.join(accepted)}"
    return repr(terminal_safe(name)), hint


def _blamed(build: Callable[[Mapping[str, Any]], None], args: Mapping[str, Any],
            required: list[str]) -> str | None:
    """The argument whose value `build` rejects: a required one that fails on its own, an
    optional one that fails beside the required ones, or the one whose removal makes the
    rest work (a combination such as SGD's nesterov without momentum); None if no one is."""
    base = {name: args[name] for name in required}
    if _fails(build, base):
        return required[0] if len(required) == 1 else None
    optional = [name for name in args if name not in base]
    for name in optional:
        if _fails(build, {**base, name: args[name]}):
            return name
    for name in optional:
        if not _fails(build, {k: v for k, v in args.items() if k != name}):
            return name
    return None


def _checked(table: dict, spec: OptimizerSpec, block: str,
             build: Callable[[type, Mapping[str, Any]], None]) -> None:
    """Check `spec`'s names against its class's signature, then its values by `build`;
    a rejected value is a ConfigError naming its key."""
    cls = _class(table, spec, block)
    required = _check_names(cls, spec, block)
    err = _fails(lambda args: build(cls, args), spec.args)
    if err is None:
        return
    reason = " ".join(f"{type(err).__name__}: {err}".split())
    name = _blamed(lambda args: build(cls, args), spec.args, required)
    if name is None:
        raise ConfigError(f"config {block}.args {dict(spec.args)!r:.120} are not valid for "
                          f"{spec.type} ({terminal_safe(reason)}); fix or remove the "
                          "offending value")
    raise ConfigError(f"config key {block}.args.{terminal_safe(name)} = "
                      f"{terminal_safe(repr(spec.args[name]))[:60]} is not valid for "
                      f"{spec.type} ({terminal_safe(reason)}); fix or remove it")


def _probe_optimizer(cls: type, args: Mapping[str, Any]) -> None:
    """Build the optimizer over a fresh one-element parameter and step it twice."""
    param = torch.nn.Parameter(torch.ones(1))
    optimizer = cls([param], **args)
    for _ in range(2):
        param.grad = torch.ones(1)
        optimizer.step()


def _probe_scheduler(cls: type, args: Mapping[str, Any]) -> None:
    """Build the scheduler over a probe optimizer and step it three times."""
    probe = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=1.0)
    scheduler = cls(probe, **args)
    for _ in range(3):
        probe.step()  # no gradient: a no-op that keeps the scheduler's order check quiet
        scheduler.step()


def check_optimizer(spec: OptimizerSpec) -> None:
    """Refuse an unknown optimizer, argument name or value before training starts."""
    _checked(OPTIMIZERS, spec, "optimizer", _probe_optimizer)


def check_scheduler(spec: OptimizerSpec) -> None:
    """Refuse an unknown scheduler, argument name or value before training starts."""
    _checked(SCHEDULERS, spec, "lr_scheduler", _probe_scheduler)


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
