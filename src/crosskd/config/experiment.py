"""An experiment config parsed once into typed parts, each handed to the code that uses it.

    experiment = parse_experiment(load_config(path))
    model = build_model(experiment.model)
    objective = build_objective(experiment.objective)
    data = RetrievalData.load(experiment.data)

`raw` stays the resolved config in the original format: it is what a run folder's
config.json and every checkpoint store, so the original code can still read them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping

from crosskd.config.data import data_spec
from crosskd.config.evaluation import qbnorm_beta
from crosskd.config.files import Config, with_eval_settings
from crosskd.config.known import check_config
from crosskd.config.model import model_spec
from crosskd.config.objective import objective_spec
from crosskd.config.reading import read_field
from crosskd.config.trainer import TrainerSpec, trainer_spec
from crosskd.data.spec import DataSpec
from crosskd.losses.spec import ObjectiveSpec
from crosskd.models.spec import ModelSpec
from crosskd.config.runtime import RuntimeSettings


@dataclass(frozen=True)
class RunKeys:
    """The experiment's own top-level keys."""

    seed: int = 0
    #: the final test's settings, merged over the config (`with_eval_settings`); they may
    #: hold any other top-level key (crosskd.config.known checks them as such)
    eval_settings: dict[str, Any] | None = None


@dataclass(frozen=True)
class ExperimentConfig:
    """The parts of one experiment; `raw` is the original-format dict they came from."""

    raw: Config
    seed: int
    model: ModelSpec
    data: DataSpec
    objective: ObjectiveSpec
    trainer: TrainerSpec
    runtime: RuntimeSettings
    qbnorm_beta: float | None = None

    def evaluation(self) -> ExperimentConfig:
        """The config of the final test: `eval_settings` merged in, parsed again."""
        return parse_experiment(with_eval_settings(self.raw))

    def with_seed(self, seed: int) -> ExperimentConfig:
        """The same experiment with another `seed` (in `raw` too)."""
        return parse_experiment({**copy.deepcopy(self.raw), "seed": int(seed)})


def parse_experiment(config: Mapping[str, Any], where: str = "config") -> ExperimentConfig:
    """Check every key and type of a resolved config, then build each typed part.

    Everything that can be checked without reading data is checked here; `where` names the
    config's source in the error for an unknown key.
    """
    check_config(config, where)
    raw = copy.deepcopy(dict(config))
    return ExperimentConfig(
        raw=raw,
        seed=read_field(RunKeys, "seed", raw),
        model=model_spec(raw),
        data=data_spec(raw),
        objective=objective_spec(raw),
        trainer=trainer_spec(raw),
        runtime=RuntimeSettings.from_config(raw),
        qbnorm_beta=qbnorm_beta(raw),
    )


def as_experiment(config: ExperimentConfig | Mapping[str, Any]) -> ExperimentConfig:
    """`config` itself when already parsed, else parsed (for callers holding a raw dict: a
    checkpoint's stored config, a test's config)."""
    return config if isinstance(config, ExperimentConfig) else parse_experiment(config)
