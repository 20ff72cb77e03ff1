"""Every loss term and total equals the original's on the golden train batch."""

from __future__ import annotations

import pytest
import torch

from loss_support import teacher_batch
from crosskd.config import objective_spec
from crosskd.losses import (MaxMarginRankingLoss, TeacherDistillationLoss, WithinBetweenLoss,
                            build_objective, first_query_ranking_loss, teacher_similarity)

REL = 1e-5
KL_ABS = 1e-7


def test_teacher_matrix_matches(forward_golden):
    teacher = teacher_similarity(forward_golden["distil_text"], forward_golden["distil_video"])
    torch.testing.assert_close(teacher, forward_golden["teacher_sims"], rtol=1e-5, atol=1e-6)


def test_ranking_term_matches(forward_golden, losses_golden):
    loss = MaxMarginRankingLoss(losses_golden["margin"], losses_golden["fix_norm"])
    value = loss(forward_golden["output"]["cross_view_conf_matrix"]).item()
    assert value == pytest.approx(losses_golden["max_margin_ranking"], rel=REL)


def test_teacher_term_matches(forward_golden, losses_golden):
    value = TeacherDistillationLoss()(forward_golden["output"]["cross_view_conf_matrix"],
                                      forward_golden["teacher_sims"]).item()
    assert value == pytest.approx(losses_golden["smooth_l1_teacher"], rel=REL)


@pytest.mark.parametrize("config", ["cecap", "ttcap"])
@pytest.mark.parametrize("side,within,key", [("caption", "cross_view_text_matrix", "cap_t"),
                                             ("video", "cross_view_vid_matrix", "vid_t")])
def test_within_between_terms_match(forward_golden, losses_golden, config, side, within, key):
    golden = losses_golden[f"rank_distil_{side}_{config}_config"]
    output = forward_golden["output"]
    value = WithinBetweenLoss(golden[key], side=side)(output["cross_view_conf_matrix"],
                                                      output[within]).item()
    assert value == pytest.approx(golden["value"], rel=REL, abs=KL_ABS)


@pytest.mark.parametrize("config", ["cecap", "ttcap", "baseline"])
def test_totals_match(forward_golden, losses_golden, golden_config, config):
    objective = build_objective(objective_spec(golden_config(config)))
    total, terms = objective(forward_golden["output"],
                             teacher_batch(forward_golden["distil_text"],
                                           forward_golden["distil_video"]))
    assert total.item() == pytest.approx(losses_golden[f"total_{config}"], rel=REL)
    assert terms["ranking"] == pytest.approx(losses_golden["max_margin_ranking"], rel=REL)
    expected_terms = {"cecap": {"ranking", "caption"}, "ttcap": {"ranking", "teacher", "caption"},
                      "baseline": {"ranking"}}[config]
    assert set(terms) == expected_terms


def test_first_query_validation_loss_matches(forward_golden, losses_golden):
    loss = MaxMarginRankingLoss(losses_golden["margin"], losses_golden["fix_norm"])
    value = first_query_ranking_loss(loss, forward_golden["eval_sims"], queries_per_video=20)
    assert value.item() == pytest.approx(losses_golden["eval_batch_first_query_ranking_loss"],
                                         rel=REL)
