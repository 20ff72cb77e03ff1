"""The objective part of a config: `loss`, `distil_loss`, `ranking_loss`, `ranking_params`.

`ObjectiveKeys` declares them (crosskd.config.keys), and each switch becomes the TermSpecs
of its crosskd.losses.terms.TERMS entries: a new term adds its switch (and its settings) as a
field of ObjectiveKeys and its TermSpec in `objective_spec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from crosskd.config.keys import setting
from crosskd.config.reading import read_part
from crosskd.errors import UserError
from crosskd.losses.spec import ObjectiveSpec, TermSpec
from crosskd.losses.terms import RANKING_LOSSES


@dataclass(frozen=True)
class RankingArgs:
    """`loss.args`: the ranking loss's settings."""

    margin: float = 1.0
    fix_norm: bool = True


@dataclass(frozen=True)
class RankingLoss:
    """`loss`: the ranking loss over the caption-video similarities, by its name in
    crosskd.losses.terms.RANKING_LOSSES."""

    args: RankingArgs = setting(json=RankingArgs | None)
    type: str = "MaxMarginRankingLoss"


@dataclass(frozen=True)
class RankingParams:
    """`ranking_params`: weight (`*_w`) and temperature (`*_t`) of the CrossKD caption
    (`cap_*`) and video (`vid_*`) terms; a term whose weight is 0 is left out."""

    cap_w: float | None = setting(None, json=float)
    cap_t: float | None = setting(None, json=float)
    vid_w: float | None = setting(None, json=float)
    vid_t: float | None = setting(None, json=float)
    detach_target: bool = False


@dataclass(frozen=True)
class ObjectiveKeys:
    """The switches of the objective's terms, and their settings."""

    loss: RankingLoss = setting(json=RankingLoss | None)
    #: TeachText: the teachers' similarities (crosskd.config.data reads the teacher files)
    distil_loss: bool = False
    #: CrossKD: the within-modality similarities teach the cross-modal ones
    ranking_loss: bool = False
    ranking_params: RankingParams | None = setting(None, json=RankingParams)


def _number(value: float | None, key: str, minimum: float, strict: bool) -> float:
    """A numeric config value at `key`, checked against its lower bound."""
    if value is None:
        raise UserError(f"config key {key} is missing; add it (see the published configs)")
    if value <= minimum if strict else value < minimum:
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise UserError(f"config key {key} must be a number {bound}, got {value!r}")
    return float(value)


def _ranking(loss: RankingLoss) -> TermSpec:
    if loss.type not in RANKING_LOSSES:
        raise UserError(f"config key loss.type is {loss.type!r}; supported: "
                        f"{tuple(RANKING_LOSSES)}")
    margin = _number(loss.args.margin, "loss.args.margin", 0.0, strict=False)
    return TermSpec("ranking", "ranking", 1.0,
                    {"loss": loss.type, "margin": margin, "fix_norm": loss.args.fix_norm})


def _within_between(params: RankingParams | None) -> list[TermSpec]:
    """The CrossKD caption/video terms, for the sides with a weight > 0."""
    if params is None:
        raise UserError("config key ranking_loss is true but ranking_params is missing; add "
                        "ranking_params with cap_w, cap_t, vid_w, vid_t")
    terms = []
    for side, prefix in (("caption", "cap"), ("video", "vid")):
        weight = _number(getattr(params, f"{prefix}_w"), f"ranking_params.{prefix}_w", 0.0,
                         strict=False)
        if weight > 0:
            temperature = _number(getattr(params, f"{prefix}_t"), f"ranking_params.{prefix}_t",
                                  0.0, strict=True)
            terms.append(TermSpec(side, "within_between", weight,
                                  {"temperature": temperature, "side": side,
                                   "detach_target": params.detach_target}))
    return terms


def objective_spec(config: Mapping[str, Any]) -> ObjectiveSpec:
    """The typed objective part of a (resolved) config."""
    keys = read_part(ObjectiveKeys, config)
    terms = [_ranking(keys.loss)]
    if keys.distil_loss:
        terms.append(TermSpec("teacher", "teacher"))
    if keys.ranking_loss:
        terms += _within_between(keys.ranking_params)
    return ObjectiveSpec(tuple(terms))
