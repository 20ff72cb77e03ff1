"""A run's parts come from the typed config and the process context, built once in a fixed
order; the trainer keeps what it is given."""

from __future__ import annotations

import pytest
import torch

from crosskd.config import ConfigError, parse_experiment
from crosskd.inference.precision import Precision
from crosskd.process import ProcessContext, TorchrunJob
from crosskd.train.assembly import build_training
from crosskd.train.trainer import Trainer
from train_support import run_config


def test_the_parts_follow_the_context_and_the_same_seed_builds_the_same_run(tiny_msrvtt,
                                                                            tmp_path):
    config, data = tiny_msrvtt
    experiment = parse_experiment(run_config(config, tmp_path, epochs=1))
    bf16 = ProcessContext(precision=Precision(torch.bfloat16))
    parts = build_training(experiment, bf16, data)
    assert parts.runtime.precision == bf16.precision  # the config's amp is not read again
    assert parts.task.model is parts.model and parts.runtime.device == bf16.device
    assert len(parts.sampler) == -(-data.train.num_videos // experiment.trainer.batch_size)
    again = build_training(experiment, ProcessContext(), data)
    assert all(torch.equal(value, again.model.state_dict()[key])
               for key, value in parts.model.state_dict().items())
    assert parts.data_rng.bit_generator.state == again.data_rng.bit_generator.state
    trainer = Trainer(again, tmp_path / "run")
    assert trainer.model is again.model and trainer.runner is again.runner
    assert trainer.config == experiment.raw and trainer.settings == experiment.trainer


def test_a_global_batch_that_does_not_split_over_the_processes_is_refused_first(tiny_msrvtt,
                                                                                tmp_path):
    config, _ = tiny_msrvtt
    missing = {**config, "data_loader": {**config["data_loader"], "args": {
        **config["data_loader"]["args"], "data_dir": str(tmp_path / "no-such-dataset")}}}
    experiment = parse_experiment(run_config(missing, tmp_path, batch_size=66))
    job = ProcessContext(job=TorchrunJob(rank=1, world_size=4))
    with pytest.raises(ConfigError, match="batch_size: 66 .*4 processes"):
        build_training(experiment, job)  # before the (missing) data is read
