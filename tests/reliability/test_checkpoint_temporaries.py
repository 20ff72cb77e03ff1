"""A kill during a checkpoint write leaves `.checkpoint_last.pth.<random>.tmp` behind: the
next save and a resume must delete such leftovers, and nothing else."""

from __future__ import annotations

import torch

from crosskd.checkpoint.run_state import (BEST_NAME, LAST_NAME, load_run_state,
                                          remove_stale_temporaries, save_run_state)
from trainers import trainer_for


def _leftovers(folder):
    """Half-written checkpoints as a killed writer leaves them, plus a file to keep."""
    stale = [folder / f".{LAST_NAME}.k1l3d0.tmp", folder / f".{BEST_NAME}.x7yq2z.tmp"]
    for path in stale:
        path.write_bytes(b"PK\x03\x04 half a checkpoint")
    keep = folder / "notes.tmp"
    keep.write_text("mine", encoding="utf-8")
    return stale, keep


def _save(path, epoch):
    return save_run_state(path, model_state={"w": torch.ones(2)}, epoch=epoch, config={},
                          monitor_best=0.0)


def test_the_next_save_removes_leftovers_of_its_own_target(tmp_path):
    (last_tmp, best_tmp), keep = _leftovers(tmp_path)
    _save(tmp_path / LAST_NAME, epoch=3)
    assert not last_tmp.exists()
    assert best_tmp.exists(), "a save only clears the temporaries of the file it writes"
    assert keep.read_text(encoding="utf-8") == "mine"
    assert load_run_state(tmp_path / LAST_NAME)["epoch"] == 3


def test_remove_stale_temporaries_clears_both_checkpoint_names_only(tmp_path):
    _save(tmp_path / LAST_NAME, epoch=1)
    stale, keep = _leftovers(tmp_path)
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST_NAME, keep.name]


def test_resume_removes_leftovers_before_training(workspace):
    run_dir = workspace.save_dir / "x" / "run"
    config = {**workspace.config, "trainer": {**workspace.config["trainer"], "epochs": 1}}
    trainer_for(config, run_dir).train()
    stale, keep = _leftovers(run_dir)
    trainer_for(config, run_dir).resume(run_dir / LAST_NAME)
    assert not any(path.exists() for path in stale)
    assert keep.exists()
