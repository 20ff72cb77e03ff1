"""A trainer built from a test's config dict as `crosskd train` builds one: the config parsed
once, the process context detected (one process: no torchrun variables are read), the parts
assembled (crosskd.train.assembly)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from crosskd.config import parse_experiment
from crosskd.data.retrieval import RetrievalData
from crosskd.process import detect
from crosskd.train.assembly import build_training
from crosskd.train.trainer import Trainer


def trainer_for(config: dict[str, Any], run_dir: Path, device: str = "cpu",
                data: RetrievalData | None = None) -> Trainer:
    """The trainer of `config` on `device` (`data` loaded from the config when not given)."""
    experiment = parse_experiment(config)
    context = detect(torch.device(device), experiment.runtime.amp, environ={})
    return Trainer(build_training(experiment, context, data), run_dir)
