"""Experiment configs in the original JSON format, parsed once into typed parts.

`load_config` reads a file and its `inherit_from` chain; `apply_overrides` applies `--set` /
`--custom_args` paths (crosskd.config.paths); `parse_experiment` refuses unknown keys and
mistyped values (crosskd.config.schema lists every known key) and builds the typed parts
(`ExperimentConfig`: model, data, objective, trainer, runtime) the builders take.
"""

from crosskd.config.experiment import ExperimentConfig, as_experiment, parse_experiment
from crosskd.config.data import data_spec
from crosskd.config.files import Config, deep_merge, load_config, save_config, with_eval_settings
from crosskd.config.known import check_config, check_path
from crosskd.config.model import model_spec
from crosskd.config.objective import objective_spec
from crosskd.config.overrides import (apply_overrides, parse_custom_args, parse_set_args,
                                      parse_value, set_key)
from crosskd.config.paths import format_path, parse_path
from crosskd.config.trainer import optimizer_spec, scheduler_spec, trainer_spec
from crosskd.config.values import positive_int, require
from crosskd.errors import ConfigError

__all__ = [
    "Config", "ConfigError", "ExperimentConfig", "apply_overrides", "as_experiment", "check_config", "check_path", "data_spec", "deep_merge",
    "format_path", "load_config", "model_spec", "objective_spec", "optimizer_spec", "parse_custom_args", "parse_experiment", "parse_path", "parse_set_args",
    "parse_value", "positive_int", "require", "save_config", "scheduler_spec", "set_key", "trainer_spec", "with_eval_settings",
]
