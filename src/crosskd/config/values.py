"""Typed reads of single config values, naming the key when one is missing or mistyped."""

from __future__ import annotations

from typing import Any, Mapping

from crosskd.config.keys import has_kind, mistyped
from crosskd.config.paths import parse_path
from crosskd.errors import ConfigError

_MISSING = object()


def require(config: Mapping[str, Any], key: str, kind: type | tuple[type, ...] = object,
            default: Any = _MISSING) -> Any:
    """Read `a.b.c` (quote keys with dots: `a."x.y".c`) from a config, raising a ConfigError
    that names the key when it is missing or of the wrong type (never a KeyError)."""
    node: Any = config
    path = parse_path(key)
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            if default is not _MISSING:
                return default
            raise ConfigError(f"config key {key} is missing")
        node = node[part]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not has_kind(node, kinds):
        raise mistyped(path, kinds, node)
    return node


def truthy(value: Any, key: str) -> bool:
    """A switch the original format also wrote as 0/1 (`trainer.tensorboard`)."""
    return bool(value)


#: the largest width or count a config may give (the published configs' largest is 4,096):
#: a config from elsewhere with 10**9 would otherwise end in a huge allocation
MAX_SIZE = 65_536


def sized(value: int, key: str) -> int:
    """`value` if it is from 1 to MAX_SIZE, else a ConfigError naming `key`."""
    if value < 1:
        raise ConfigError(f"config key {key} must be an integer > 0, got {value}")
    if value > MAX_SIZE:
        raise ConfigError(f"config key {key}: {value} is out of range; use an integer from "
                          f"1 to {MAX_SIZE}")
    return value
