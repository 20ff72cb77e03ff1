"""Best-epoch selection: the monitored metric, and on its exact ties `trainer.monitor_tie_break`
where a config sets one (generated configs); published configs keep the original's rule."""

from __future__ import annotations

import pytest

from crosskd.config import ConfigError, load_config, trainer_spec
from crosskd.config.monitor import Monitor, tie_keeps_best
from crosskd.shipped import config_dir
from trainers import trainer_for
from train_support import run_config

#: R@50 of a split of fewer than 50 videos is 100 whatever the model: every epoch ties.
ALWAYS_TIED = "max val_t2v_metrics_R50"
MEAN_RANK = "val_t2v_metrics_MeanR"
EPOCHS = 4


def _trained(tiny_msrvtt, tmp_path, **trainer) -> tuple[int, list[dict]]:
    """The best epoch and the log of a short run monitoring a metric that always ties."""
    config, data = tiny_msrvtt
    assert data.eval.num_videos < 50
    run = run_config(config, tmp_path, epochs=EPOCHS, monitor=ALWAYS_TIED, **trainer)
    result = trainer_for(run, tmp_path / "run", data=data).train()
    return result.best_epoch, result.history


def test_without_a_tie_break_the_later_epoch_wins_as_in_the_original(tiny_msrvtt, tmp_path):
    best, _ = _trained(tiny_msrvtt, tmp_path)
    assert best == EPOCHS


def test_a_tie_break_decides_exact_ties(tiny_msrvtt, tmp_path):
    best, _ = _trained(tiny_msrvtt, tmp_path, monitor_tie_break="min epoch")
    assert best == 1  # every epoch ties on R@50; the first has the smallest epoch number


def test_the_mean_rank_tie_break_keeps_the_best_ranking_epoch(tiny_msrvtt, tmp_path):
    best, history = _trained(tiny_msrvtt, tmp_path, monitor_tie_break=f"min {MEAN_RANK}")
    lowest = min(row[MEAN_RANK] for row in history)
    assert history[best - 1][MEAN_RANK] == lowest
    assert all(row[MEAN_RANK] > lowest for row in history[best:])  # later only on a tie


def test_a_tie_break_the_trainer_does_not_log_is_named(tiny_msrvtt, tmp_path):
    with pytest.raises(ConfigError, match="trainer.monitor_tie_break names 'val_nothing'"):
        _trained(tiny_msrvtt, tmp_path, monitor_tie_break="min val_nothing")


def test_a_malformed_tie_break_names_its_key():
    with pytest.raises(ConfigError, match="trainer.monitor_tie_break 'lowest x'"):
        Monitor.parse("lowest x", "trainer.monitor_tie_break")


def test_tie_break_prefers_the_best_only_when_strictly_better():
    mean_rank = Monitor.parse(f"min {MEAN_RANK}")
    assert tie_keeps_best(mean_rank, {MEAN_RANK: 3.0}, {MEAN_RANK: 2.5})
    assert not tie_keeps_best(mean_rank, {MEAN_RANK: 2.5}, {MEAN_RANK: 2.5})
    assert not tie_keeps_best(mean_rank, {MEAN_RANK: 2.0}, {MEAN_RANK: 2.5})
    assert not tie_keeps_best(Monitor.parse("off"), {MEAN_RANK: 3.0}, {MEAN_RANK: 2.5})


@pytest.mark.parametrize("path", sorted(config_dir().glob("*.json")), ids=lambda p: p.name)
def test_published_configs_select_by_the_original_rule(path):
    assert trainer_spec(load_config(path)).tie_break.mode == "off"
