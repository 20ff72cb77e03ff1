"""JSON experiment configs in the original format: inheritance, overrides, eval settings."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any, Iterable

from crosskd.errors import UserError

log = logging.getLogger(__name__)

Config = dict[str, Any]


class ConfigError(UserError):
    """A config file or override that cannot be used; the message says which and why."""


def deep_merge(base: Config, override: Config) -> Config:
    """Return `base` updated recursively by `override` (the override wins on conflicts)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_json(path: Path) -> Config:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {path} is not UTF-8 text; save it as UTF-8 JSON") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"config {path} is not valid JSON: {err}") from None
    except (OSError, RecursionError) as err:
        reason = getattr(err, "strerror", None) or type(err).__name__
        raise ConfigError(f"cannot read config {path}: {reason}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must hold a JSON object, found {type(data).__name__}")
    return data


def _find_parent(child: Path, parent: str) -> Path | None:
    """Resolve `inherit_from` relative to the child file first, then the working directory."""
    for candidate in (child.parent / parent, Path(parent)):
        if candidate.is_file():
            return candidate
    return None


def load_config(path: str | Path, _seen: tuple[Path, ...] = ()) -> Config:
    """Load a config, merging its `inherit_from` chain (the child wins).

    A missing parent is only a warning: the published model-zoo configs are already
    complete and still name a parent that users rarely have.
    """
    path = Path(path)
    if path.resolve() in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path.resolve()))
        raise ConfigError(f"inherit_from cycle: {chain}")
    config = _read_json(path)
    parent_name = config.pop("inherit_from", None)
    if not parent_name:
        return config
    if not isinstance(parent_name, str):
        raise ConfigError(f"config {path}: inherit_from must be a file name, "
                          f"not {type(parent_name).__name__}")
    parent_path = _find_parent(path, parent_name)
    if parent_path is None:
        log.warning("config %s: parent %r not found next to it or in the working directory; "
                    "using the config as it is", path, parent_name)
        return config
    parent = load_config(parent_path, (*_seen, path.resolve()))
    return deep_merge(parent, config)


_MISSING = object()


def require(config: Config, dotted_key: str, kind: type | tuple[type, ...] = object,
            default: Any = _MISSING) -> Any:
    """Read `a.b.c` from a config, raising a ConfigError that names the key when it is
    missing or of the wrong type (so a damaged config never ends in a KeyError traceback)."""
    node: Any = config
    for part in dotted_key.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is not _MISSING:
                return default
            raise ConfigError(f"config key {dotted_key} is missing")
        node = node[part]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(node, kinds) or (isinstance(node, bool) and bool not in kinds
                                       and kinds != (object,)):
        wanted = " or ".join(k.__name__ for k in kinds)
        raise ConfigError(f"config key {dotted_key} must be {wanted}, "
                          f"not {type(node).__name__} ({node!r:.60})")
    return node


def parse_value(text: str) -> Any:
    """Interpret an override value as JSON (numbers, booleans, lists), else as a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def set_key(config: Config, dotted_key: str, value: Any) -> None:
    """Set `a.b.c` in a nested config, creating intermediate objects as needed."""
    *parents, leaf = dotted_key.split(".")
    node = config
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {dotted_key}: {part!r} holds a {type(child).__name__}, "
                              "not an object")
        node = child
    node[leaf] = value


def _split_assignment(item: str, separator: str) -> tuple[str, str]:
    key, found, value = item.partition(separator)
    if not found or not key:
        raise ConfigError(f"override {item!r} must look like key.path{separator}value")
    return key.strip(), value.strip()


def parse_custom_args(custom_args: str | None) -> list[tuple[str, str]]:
    """Split the original's `--custom_args a.b@1+c.d@x` into (key, value) pairs."""
    if not custom_args:
        return []
    return [_split_assignment(item, "@") for item in custom_args.split("+") if item]


def parse_set_args(assignments: Iterable[str] | None) -> list[tuple[str, str]]:
    """Split repeatable `--set a.b=1` options into (key, value) pairs."""
    return [_split_assignment(item, "=") for item in assignments or ()]


def apply_overrides(config: Config, overrides: Iterable[tuple[str, str]]) -> Config:
    """Return a copy of `config` with each dotted key set to its parsed value."""
    updated = copy.deepcopy(config)
    for key, raw in overrides:
        set_key(updated, key, parse_value(raw))
    return updated


def with_eval_settings(config: Config) -> Config:
    """The config the final test uses: `eval_settings` merged over the training config."""
    return deep_merge(config, config.get("eval_settings") or {})


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved config beside a run, so the run can be repeated exactly."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2, sort_keys=False) + "\n", encoding="utf-8")
