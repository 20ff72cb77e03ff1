"""Experiment configs in the original JSON format, parsed once into typed parts.

`load_config` reads a file and its `inherit_from` chain; `apply_overrides` applies `--set` /
`--custom_args` paths (crosskd.config.paths); `check_config` refuses unknown keys and mistyped
values (crosskd.config.schema lists every known key).
"""

from crosskd.config.files import Config, deep_merge, load_config, save_config, with_eval_settings
from crosskd.config.known import check_config, check_path
from crosskd.config.overrides import (apply_overrides, parse_custom_args, parse_set_args,
                                      parse_value, set_key)
from crosskd.config.paths import format_path, parse_path
from crosskd.config.values import positive_int, require
from crosskd.errors import ConfigError

__all__ = [
    "Config", "ConfigError", "apply_overrides", "check_config", "check_path", "deep_merge",
    "format_path", "load_config", "parse_custom_args", "parse_path", "parse_set_args",
    "parse_value", "positive_int", "require", "save_config", "set_key", "with_eval_settings",
]
