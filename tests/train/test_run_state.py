"""Run checkpoints: safe loading, atomic writes, exact RNG round trips."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from crosskd.checkpoint.run_state import (LAST_NAME, load_run_state, resolve_resume_path,
                                          save_run_state)
from crosskd.errors import UserError
from crosskd.train.seeds import capture_rng_state, restore_rng_state, seed_everything


def _draws(rng: np.random.Generator) -> tuple:
    return (random.random(), np.random.rand(), rng.random(3).tolist(), torch.rand(2).tolist())


def test_rng_state_round_trip_through_a_checkpoint(tmp_path):
    rng = seed_everything(7)
    _draws(rng)
    path = save_run_state(tmp_path / LAST_NAME, model_state={"w": torch.ones(2)}, epoch=3,
                          config={"seed": 7, "a": {"b": [1, 2]}}, monitor_best=1.5,
                          rng_state=capture_rng_state(rng), best_epoch=2)
    expected = _draws(rng)
    seed_everything(99)  # scramble every generator
    other = np.random.default_rng(5)
    state = torch.load(path, weights_only=True)  # must load without unsafe unpickling
    assert state["epoch"] == 3
    loaded = load_run_state(path)
    restore_rng_state(loaded["rng_state"], other)
    assert _draws(other) == expected
    assert loaded["config"] == {"seed": 7, "a": {"b": [1, 2]}}
    assert loaded["best_epoch"] == 2 and loaded["monitor_best"] == 1.5


def test_failed_write_keeps_the_previous_checkpoint(tmp_path):
    path = save_run_state(tmp_path / LAST_NAME, model_state={"w": torch.zeros(1)}, epoch=1,
                          config={}, monitor_best=0.0)

    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_run_state(path, model_state={"w": Unsaveable()}, epoch=2, config={},
                       monitor_best=0.0)
    assert load_run_state(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == [LAST_NAME]  # no temporary file left


def test_resume_accepts_a_run_folder_and_rejects_other_files(tmp_path):
    path = save_run_state(tmp_path / LAST_NAME, model_state={}, epoch=1, config={},
                          monitor_best=0.0)
    assert resolve_resume_path(tmp_path) == path
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="neither"):
        resolve_resume_path(tmp_path / "empty")
    with pytest.raises(UserError, match="no such"):
        resolve_resume_path(tmp_path / "missing")
    bare = tmp_path / "bare.pth"
    torch.save({"w": torch.ones(1)}, bare)
    with pytest.raises(UserError, match="not a crosskd run checkpoint"):
        load_run_state(bare)
