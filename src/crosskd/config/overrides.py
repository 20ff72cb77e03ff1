"""Command-line overrides: `--set key.path=value` and the original's `--custom_args a@1+b@2`.

Paths use crosskd.config.paths (quote a key holding dots) and are checked against the known
keys before they are applied, so a typo is refused with the closest key, not added silently.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Iterable

from crosskd.config.files import Config
from crosskd.config.known import check_paths
from crosskd.config.paths import KeyPath, format_path, parse_path, split_unquoted
from crosskd.errors import ConfigError


def parse_value(text: str) -> Any:
    """Interpret an override value as JSON (numbers, booleans, lists), else as a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def set_key(config: Config, key: str | KeyPath, value: Any) -> None:
    """Set `a.b.c` (a path text or tuple) in a nested config, creating objects as needed."""
    path = parse_path(key) if isinstance(key, str) else tuple(key)
    *parents, leaf = path
    node = config
    for depth, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {format_path(path)}: "
                              f"{format_path(path[:depth + 1])} holds a "
                              f"{type(child).__name__}, not an object")
        node = child
    node[leaf] = value


def _split_assignment(item: str, separator: str) -> tuple[str, str]:
    parts = split_unquoted(item, separator)
    key, value = parts[0], separator.join(parts[1:])
    if len(parts) < 2 or not key.strip():
        raise ConfigError(f"override {item!r} must look like key.path{separator}value")
    return key.strip(), value.strip()


def parse_custom_args(custom_args: str | None) -> list[tuple[str, str]]:
    """Split the original's `--custom_args a.b@1+c.d@x` into (key, value) pairs."""
    if not custom_args:
        return []
    return [_split_assignment(item, "@") for item in split_unquoted(custom_args, "+") if item]


def parse_set_args(assignments: Iterable[str] | None) -> list[tuple[str, str]]:
    """Split repeatable `--set a.b=1` options into (key, value) pairs."""
    return [_split_assignment(item, "=") for item in assignments or ()]


def apply_overrides(config: Config, overrides: Iterable[tuple[str, str]],
                    where: str = "override") -> Config:
    """A copy of `config` with each key path set to its parsed value; an unknown path is a
    ConfigError naming `where` (the flag) and, for every unknown path at once, the closest
    known key."""
    overrides = list(overrides)
    paths = check_paths((key for key, _ in overrides), where)
    updated = copy.deepcopy(config)
    for path, (_, raw) in zip(paths, overrides):
        set_key(updated, path, parse_value(raw))
    return updated
