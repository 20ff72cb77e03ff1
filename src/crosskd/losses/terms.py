"""Objective terms: each maps the model output and the batch to one scalar loss.

Every term has the one signature `term(output, batch) -> Tensor` (output: the model's dict,
`cross_view_conf_matrix` and friends; batch: crosskd.data.batch.Batch, or None when no term
needs it). To add a term: write its module here (or beside it) and add one entry to `TERMS`;
the config layer (crosskd.config.objective) says which keys switch it on.
"""

from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import nn

from crosskd.data.batch import Batch
from crosskd.errors import UserError
from crosskd.losses.ranking import MaxMarginRankingLoss
from crosskd.losses.teachtext import TeacherDistillationLoss, teacher_similarity
from crosskd.losses.within_between import WithinBetweenLoss

Output = Mapping[str, torch.Tensor]

#: ranking losses by the name `loss.type` gives them.
RANKING_LOSSES: dict[str, Callable[..., nn.Module]] = {
    "MaxMarginRankingLoss": MaxMarginRankingLoss}

#: which output matrix the within-modality side of a CrossKD term reads.
WITHIN_MATRICES = {"caption": "cross_view_text_matrix", "video": "cross_view_vid_matrix"}


class RankingTerm(nn.Module):
    """A ranking loss (`loss.type`) over the caption-video similarity matrix."""

    def __init__(self, loss: str = "MaxMarginRankingLoss", **args) -> None:
        super().__init__()
        self.loss = RANKING_LOSSES[loss](**args)

    def forward(self, output: Output, batch: Batch | None) -> torch.Tensor:
        return self.loss(output["cross_view_conf_matrix"])


class TeacherTerm(nn.Module):
    """TeachText: the student's similarities regressed onto the batch's teachers'."""

    def __init__(self) -> None:
        super().__init__()
        self.loss = TeacherDistillationLoss()

    def forward(self, output: Output, batch: Batch | None) -> torch.Tensor:
        if batch is None or not batch.distil_text or not batch.distil_video:
            raise UserError("config key distil_loss is true but the batch holds no teacher "
                            "embeddings: list the teacher files in distil_params.teachers")
        teacher = teacher_similarity(batch.distil_text, batch.distil_video)
        return self.loss(output["cross_view_conf_matrix"], teacher)


class WithinBetweenTerm(nn.Module):
    """CrossKD: a within-modality matrix (caption or video side) teaches the cross one."""

    def __init__(self, temperature: float, side: str, detach_target: bool = False) -> None:
        super().__init__()
        self.loss = WithinBetweenLoss(temperature, side=side, detach_target=detach_target)
        self.within = WITHIN_MATRICES[side]

    def forward(self, output: Output, batch: Batch | None) -> torch.Tensor:
        return self.loss(output["cross_view_conf_matrix"], output[self.within])


#: every term kind an objective may hold, by the name a TermSpec gives it.
TERMS: dict[str, Callable[..., nn.Module]] = {
    "ranking": RankingTerm,
    "teacher": TeacherTerm,
    "within_between": WithinBetweenTerm,
}
