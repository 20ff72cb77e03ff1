"""A run that writes its checkpoints in the background writes the same files."""

from __future__ import annotations

import torch

from crosskd.checkpoint.run_state import LAST_NAME, load_run_state
from train_support import run_config


def test_background_checkpoints_equal_checkpoints_written_in_place(tiny_msrvtt, tmp_path):
    from trainers import trainer_for
    config, data = tiny_msrvtt
    states = []
    for background in (False, True):
        run = run_config(config, tmp_path, epochs=2, background_checkpoints=background)
        trainer = trainer_for(run, tmp_path / f"run{background}", data=data)
        assert (trainer.writer is not None) == background
        trainer.train()
        states.append(load_run_state(tmp_path / f"run{background}" / LAST_NAME))
    in_place, background = states
    assert in_place["history"] == background["history"] and background["epoch"] == 2
    for key, value in in_place["state_dict"].items():
        assert torch.equal(value, background["state_dict"][key])
    for param, state in in_place["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(value, background["optimizer"]["state"][param][name])
