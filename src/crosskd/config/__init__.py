"""Experiment configs in the original JSON format, parsed once into typed parts.

`load_config` reads a file and its `inherit_from` chain; `apply_overrides` applies `--set` /
`--custom_args` paths (crosskd.config.paths); `parse_experiment` refuses unknown keys and
mistyped values and builds the typed parts (`ExperimentConfig`: model, data, objective,
trainer, runtime) the builders take. Each key is declared once, as a field of the part that
reads it (crosskd.config.keys); crosskd.config.schema derives the known keys from them.

Reading a config needs no torch; the parts are imported on first use (they name the
builders' types), by checking keys too, so `crosskd zoo list` and friends start without torch.
"""

from importlib import import_module
from typing import Any

from crosskd.config.files import Config, deep_merge, load_config, save_config, with_eval_settings
from crosskd.config.known import check_config, check_override_flags, check_path
from crosskd.config.overrides import (apply_overrides, parse_custom_args, parse_set_args,
                                      parse_value, set_key)
from crosskd.config.paths import format_path, parse_path
from crosskd.config.values import require
from crosskd.errors import ConfigError

#: names imported on first use, by the submodule that defines them.
_PARTS = {
    "ExperimentConfig": "experiment", "as_experiment": "experiment",
    "parse_experiment": "experiment", "data_spec": "data", "model_spec": "model",
    "objective_spec": "objective", "optimizer_spec": "trainer", "scheduler_spec": "trainer",
    "trainer_spec": "trainer",
}


def __getattr__(name: str) -> Any:
    if name in _PARTS:
        return getattr(import_module(f"crosskd.config.{_PARTS[name]}"), name)
    raise AttributeError(f"module 'crosskd.config' has no attribute {name!r}")


__all__ = [
    "Config", "ConfigError", "apply_overrides", "check_config", "check_override_flags",
    "check_path", "deep_merge",
    "format_path", "load_config", "parse_custom_args", "parse_path", "parse_set_args",
    "parse_value", "require", "save_config", "set_key", "with_eval_settings",
    *_PARTS,
]
