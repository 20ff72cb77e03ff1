"""Retrieval losses on similarity matrices, usable with any model that produces them."""

from crosskd.losses.objective import RetrievalObjective, build_objective
from crosskd.losses.ranking import MaxMarginRankingLoss, first_query_ranking_loss
from crosskd.losses.spec import ObjectiveSpec, TermSpec
from crosskd.losses.teachtext import TeacherDistillationLoss, teacher_similarity
from crosskd.losses.terms import RANKING_LOSSES, TERMS
from crosskd.losses.within_between import WithinBetweenLoss, rank_distillation

__all__ = [
    "MaxMarginRankingLoss",
    "ObjectiveSpec",
    "RANKING_LOSSES",
    "RetrievalObjective",
    "TERMS",
    "TeacherDistillationLoss",
    "TermSpec",
    "WithinBetweenLoss",
    "build_objective",
    "first_query_ranking_loss",
    "rank_distillation",
    "teacher_similarity",
]
