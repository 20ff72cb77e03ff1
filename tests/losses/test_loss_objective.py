"""The config-built objective: which terms it adds, with which weights, and its checks."""

from __future__ import annotations

import pytest
import torch

from loss_support import teacher_batch
from crosskd.config import objective_spec
from crosskd.errors import UserError
from crosskd.losses import MaxMarginRankingLoss, WithinBetweenLoss, build_objective


def _config(**changes) -> dict:
    config = {
        "loss": {"type": "MaxMarginRankingLoss", "args": {"margin": 0.1, "fix_norm": True}},
        "distil_loss": False,
        "ranking_loss": True,
        "ranking_params": {"cap_w": 1.0, "cap_t": 5.0, "vid_w": 0.0, "vid_t": 1.0},
    }
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = config
        for part in parents:
            node = node[part]
        node[leaf] = value
    return config


def _output(n: int = 4) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {key: torch.randn(n, n, generator=gen) for key in
            ("cross_view_conf_matrix", "cross_view_text_matrix", "cross_view_vid_matrix")}


def _teachers(n: int = 4):
    gen = torch.Generator().manual_seed(1)
    return ({"t": {"audio": torch.randn(n, 1, 3, generator=gen)}},
            {"t": {"audio": torch.randn(n, 3, generator=gen)}})


def test_weighted_video_term_is_added_when_its_weight_is_positive():
    output = _output()
    sims = output["cross_view_conf_matrix"]
    total, terms = build_objective(objective_spec(_config(ranking_params__vid_w=0.5)))(output)
    expected = (MaxMarginRankingLoss(0.1)(sims)
                + WithinBetweenLoss(5.0)(sims, output["cross_view_text_matrix"])
                + 0.5 * WithinBetweenLoss(1.0, side="video")(sims, output["cross_view_vid_matrix"]))
    assert set(terms) == {"ranking", "caption", "video"}
    assert total.item() == pytest.approx(expected.item())


def test_zero_weight_and_disabled_terms_are_skipped():
    _, terms = build_objective(objective_spec(_config(ranking_params__cap_w=0.0)))(_output())
    assert set(terms) == {"ranking"}
    off = _config(ranking_loss=False, ranking_params__cap_t=0)
    _, terms = build_objective(objective_spec(off))(_output())
    assert set(terms) == {"ranking"}


def test_teacher_term_needs_teacher_tensors():
    objective = build_objective(objective_spec(_config(distil_loss=True)))
    distil_text, distil_video = _teachers()
    total, terms = objective(_output(), teacher_batch(distil_text, distil_video))
    assert set(terms) == {"ranking", "teacher", "caption"}
    assert total.item() == pytest.approx(sum(terms.values()), rel=1e-6)
    with pytest.raises(UserError, match="distil_params.teachers"):
        objective(_output())


def test_total_backpropagates_into_the_model_matrices():
    output = {key: value.requires_grad_(True) for key, value in _output().items()}
    total, _ = build_objective(objective_spec(_config()))(output)
    total.backward()
    assert output["cross_view_conf_matrix"].grad is not None
    assert output["cross_view_text_matrix"].grad is not None


@pytest.mark.parametrize("changes,key", [
    ({"ranking_params__cap_t": 0}, "ranking_params.cap_t"),
    ({"ranking_params__cap_t": "5"}, "ranking_params.cap_t"),
    ({"ranking_params__vid_w": 1.0, "ranking_params__vid_t": -1.0}, "ranking_params.vid_t"),
    ({"ranking_params__cap_w": -1.0}, "ranking_params.cap_w"),
    ({"loss__args__margin": -0.1}, "loss.args.margin"),
    ({"loss__args__fix_norm": "yes"}, "loss.args.fix_norm"),
    ({"loss__type": "BCEWithLogitsLoss"}, "loss.type"),
    ({"distil_loss": "true"}, "distil_loss"),
    ({"ranking_params": None}, "ranking_params"),
])
def test_bad_config_values_name_the_key(changes, key):
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        build_objective(objective_spec(_config(**changes)))


def test_missing_temperature_of_a_used_term_is_reported():
    config = _config()
    del config["ranking_params"]["cap_t"]
    with pytest.raises(UserError, match=r"ranking_params\.cap_t is missing"):
        build_objective(objective_spec(config))


@pytest.mark.parametrize("loss_block", [["MaxMarginRankingLoss"], {"args": [0.1]}, {"type": 3}])
def test_damaged_loss_block_is_refused_by_name(loss_block):
    with pytest.raises(UserError, match="loss"):
        build_objective(objective_spec({"loss": loss_block}))
