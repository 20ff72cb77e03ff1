"""JSON experiment configs in the original format: reading, inheritance, eval settings, saving."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

from crosskd.diskwrites import atomic_path
from crosskd.errors import ConfigError

log = logging.getLogger(__name__)

Config = dict[str, Any]


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


def with_eval_settings(config: Config) -> Config:
    """The config the final test uses: `eval_settings` merged over the training config."""
    return deep_merge(config, config.get("eval_settings") or {})


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved config beside a run, so the run can be repeated exactly."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # a full disk leaves no half-written config
        tmp.write_text(json.dumps(config, indent=2, sort_keys=False) + "\n", encoding="utf-8")
