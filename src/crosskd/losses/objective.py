"""The training objective a config asks for: ranking + TeachText + CrossKD terms."""

from __future__ import annotations

from numbers import Real
from typing import Any, Mapping

import torch
from torch import nn

from crosskd.config import require
from crosskd.errors import UserError
from crosskd.losses.ranking import MaxMarginRankingLoss
from crosskd.losses.teachtext import (TeacherDistillationLoss, TeacherEmbeddings,
                                      teacher_similarity)
from crosskd.losses.within_between import WithinBetweenLoss

RANKING_LOSS_TYPES = ("MaxMarginRankingLoss",)


class RetrievalObjective(nn.Module):
    """Total loss = ranking + teacher term + cap_w * caption term + vid_w * video term.

    Terms that are switched off (no teacher loss, zero weight) are neither computed nor
    reported. `forward` returns the total and the unweighted value of every term used.
    """

    def __init__(self, ranking: nn.Module, teacher: nn.Module | None = None,
                 caption: nn.Module | None = None, caption_weight: float = 0.0,
                 video: nn.Module | None = None, video_weight: float = 0.0) -> None:
        super().__init__()
        self.ranking = ranking
        self.teacher = teacher
        self.caption = caption
        self.video = video
        self.weights = {"teacher": 1.0, "caption": caption_weight, "video": video_weight}

    def forward(self, output: Mapping[str, torch.Tensor],
                distil_text: TeacherEmbeddings | None = None,
                distil_video: TeacherEmbeddings | None = None,
                ) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of a model output dict (`cross_view_conf_matrix`, ...) and teacher tensors."""
        total, terms = self.terms(output, distil_text, distil_video)
        # one device-to-host copy for every term, not one per term
        values = torch.stack(list(terms.values())).tolist()
        return total, dict(zip(terms, values))

    def terms(self, output: Mapping[str, torch.Tensor],
              distil_text: TeacherEmbeddings | None = None,
              distil_video: TeacherEmbeddings | None = None,
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total and every term's detached float32 value, all left on the device (what a
        captured CUDA graph returns: it cannot copy to the host)."""
        sims = output["cross_view_conf_matrix"]
        terms = {"ranking": self.ranking(sims)}
        if self.teacher is not None:
            if not distil_text or not distil_video:
                raise UserError("config key distil_loss is true but the batch holds no teacher "
                                "embeddings: list the teacher files in distil_params.teachers")
            terms["teacher"] = self.teacher(sims, teacher_similarity(distil_text, distil_video))
        if self.caption is not None:
            terms["caption"] = self.caption(sims, output["cross_view_text_matrix"])
        if self.video is not None:
            terms["video"] = self.video(sims, output["cross_view_vid_matrix"])
        total = terms["ranking"]
        for name in ("teacher", "caption", "video"):
            if name in terms:
                total = total + self.weights[name] * terms[name]
        return total, {name: value.detach().float() for name, value in terms.items()}


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


def _ranking_loss(config: Mapping[str, Any]) -> MaxMarginRankingLoss:
    loss = require(config, "loss", (dict, type(None)), default=None) or {}
    kind = loss.get("type", "MaxMarginRankingLoss")
    if not isinstance(kind, str) or kind not in RANKING_LOSS_TYPES:
        raise UserError(f"config key loss.type is {kind!r}; supported: {RANKING_LOSS_TYPES}")
    args = require(config, "loss.args", (dict, type(None)), default=None) or {}
    margin = _number({"margin": 1.0, **args}, "margin", "loss.args", 0.0, strict=False)
    fix_norm = args.get("fix_norm", True)
    if not isinstance(fix_norm, bool):
        raise UserError(f"config key loss.args.fix_norm must be true or false, got {fix_norm!r}")
    return MaxMarginRankingLoss(margin=margin, fix_norm=fix_norm)


def _within_between_terms(config: Mapping[str, Any]) -> dict[str, Any]:
    """The CrossKD caption/video terms and weights, for the terms with a weight > 0."""
    params = config.get("ranking_params")
    if not isinstance(params, Mapping):
        raise UserError("config key ranking_loss is true but ranking_params is missing; add "
                        "ranking_params with cap_w, cap_t, vid_w, vid_t")
    detach = params.get("detach_target", False)
    terms: dict[str, Any] = {}
    for side, prefix in (("caption", "cap"), ("video", "vid")):
        weight = _number(params, f"{prefix}_w", "ranking_params", 0.0, strict=False)
        if weight > 0:
            temperature = _number(params, f"{prefix}_t", "ranking_params", 0.0, strict=True)
            terms[side] = WithinBetweenLoss(temperature, side=side, detach_target=detach)
            terms[f"{side}_weight"] = weight
    return terms


def build_objective(config: Mapping[str, Any]) -> RetrievalObjective:
    """The objective of a resolved config (`loss`, `distil_loss`, `ranking_loss`, ...)."""
    teacher = TeacherDistillationLoss() if _flag(config, "distil_loss") else None
    extra = _within_between_terms(config) if _flag(config, "ranking_loss") else {}
    return RetrievalObjective(_ranking_loss(config), teacher=teacher, **extra)
