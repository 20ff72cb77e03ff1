"""The objective part of a config: `loss`, `distil_loss`, `ranking_loss`, `ranking_params`.

Each switch of the original format becomes one TermSpec; a new term adds its switch here.
"""

from __future__ import annotations

from numbers import Real
from typing import Any, Mapping

from crosskd.config.values import require
from crosskd.errors import UserError
from crosskd.losses.spec import ObjectiveSpec, TermSpec
from crosskd.losses.terms import RANKING_LOSSES


def _number(section: Mapping[str, Any], key: str, where: str, minimum: float,
            strict: bool) -> float:
    """A numeric config value at `where.key`, checked against its lower bound."""
    if key not in section:
        raise UserError(f"config key {where}.{key} is missing; add it (see the published configs)")
    value = section[key]
    bad_type = isinstance(value, bool) or not isinstance(value, Real)
    if bad_type or (value <= minimum if strict else value < minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise UserError(f"config key {where}.{key} must be a number {bound}, got {value!r}")
    return float(value)


def _flag(config: Mapping[str, Any], key: str) -> bool:
    value = config.get(key, False)
    if not isinstance(value, bool):
        raise UserError(f"config key {key} must be true or false, got {value!r}")
    return value


def _ranking(config: Mapping[str, Any]) -> TermSpec:
    loss = require(config, "loss", (dict, type(None)), default=None) or {}
    kind = loss.get("type", "MaxMarginRankingLoss")
    if not isinstance(kind, str) or kind not in RANKING_LOSSES:
        raise UserError(f"config key loss.type is {kind!r}; supported: {tuple(RANKING_LOSSES)}")
    args = require(config, "loss.args", (dict, type(None)), default=None) or {}
    margin = _number({"margin": 1.0, **args}, "margin", "loss.args", 0.0, strict=False)
    fix_norm = args.get("fix_norm", True)
    if not isinstance(fix_norm, bool):
        raise UserError(f"config key loss.args.fix_norm must be true or false, got {fix_norm!r}")
    return TermSpec("ranking", "ranking", 1.0,
                    {"loss": kind, "margin": margin, "fix_norm": fix_norm})


def _within_between(config: Mapping[str, Any]) -> list[TermSpec]:
    """The CrossKD caption/video terms, for the sides with a weight > 0."""
    params = config.get("ranking_params")
    if not isinstance(params, Mapping):
        raise UserError("config key ranking_loss is true but ranking_params is missing; add "
                        "ranking_params with cap_w, cap_t, vid_w, vid_t")
    detach = params.get("detach_target", False)
    terms = []
    for side, prefix in (("caption", "cap"), ("video", "vid")):
        weight = _number(params, f"{prefix}_w", "ranking_params", 0.0, strict=False)
        if weight > 0:
            temperature = _number(params, f"{prefix}_t", "ranking_params", 0.0, strict=True)
            terms.append(TermSpec(side, "within_between", weight,
                                  {"temperature": temperature, "side": side,
                                   "detach_target": detach}))
    return terms


def objective_spec(config: Mapping[str, Any]) -> ObjectiveSpec:
    """The typed objective part of a (resolved) config."""
    terms = [_ranking(config)]
    if _flag(config, "distil_loss"):
        terms.append(TermSpec("teacher", "teacher"))
    if _flag(config, "ranking_loss"):
        terms += _within_between(config)
    return ObjectiveSpec(tuple(terms))
