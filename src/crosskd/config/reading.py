"""Typed parts read from a config through the keys their fields declare
(crosskd.config.keys), naming a missing or mistyped key."""

from __future__ import annotations

from typing import Any, Mapping, TypeVar

from crosskd.config.keys import (NULL, Declared, Shape, declared, has_kind, mistyped,
                                 section_path)
from crosskd.config.paths import KeyPath, format_path, parse_path
from crosskd.errors import ConfigError

Part = TypeVar("Part")


def read_part(cls: type[Part], config: Mapping[str, Any]) -> Part:
    """The declaring class `cls` read from a whole config."""
    return _read(cls, _section(cls, config), section_path(cls))


def read_field(cls: type, name: str, config: Mapping[str, Any]) -> Any:
    """The field `name` of the declaring class `cls` read from a whole config, alone (as
    reading the whole part would give it)."""
    where = section_path(cls)
    key = next(key for key in declared(cls) if key.source.name == name)
    return _field_value(key, _section(cls, config), where)


def read_section(cls: type[Part], value: Mapping[str, Any], key: str) -> Part:
    """The declaring class `cls` read from the object a config holds at `key` (for a
    `convert` that reads an object its own way)."""
    return _read(cls, value, parse_path(key))


def _section(cls: type, config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object of a config holding the keys of `cls` (empty when left out or null)."""
    where = section_path(cls)
    found, section = _lookup(config, where, ())
    if not found or section is None:
        return {}
    if not isinstance(section, Mapping):
        raise mistyped(where, (dict, NULL), section)
    return section


def _read(cls: type[Part], section: Mapping[str, Any], where: KeyPath) -> Part:
    return cls(**{key.source.name: _field_value(key, section, where) for key in declared(cls)})


def _lookup(section: Mapping[str, Any], path: KeyPath, where: KeyPath) -> tuple[bool, Any]:
    """(found, value) at `path` below `section`; an object on the way that is left out or null
    holds nothing."""
    node: Any = section
    for depth, part in enumerate(path):
        if depth and not isinstance(node, Mapping):
            raise mistyped((*where, *path[:depth]), (dict, NULL), node)
        if part not in node or node[part] is None and depth < len(path) - 1:
            return False, None
        node = node[part]
    return True, node


def _field_value(key: Declared, section: Mapping[str, Any], where: KeyPath) -> Any:
    """The value of one field from the object holding its key."""
    path = (*where, *key.path)
    found, value = _lookup(section, key.path, where)
    shape = key.shape
    if shape.section and (not found or value is None and NULL in shape.kinds):
        if key.optional:
            return None
        found, value = True, {}  # an object left out holds its keys' defaults
    if not found:
        if key.has_default:
            return key.default()
        hint = f": {key.setting.missing}" if key.setting.missing else ""
        raise ConfigError(f"config key {format_path(path)} is missing{hint}")
    if not has_kind(value, shape.kinds):
        raise mistyped(path, shape.kinds, value)
    if value is None and NULL in shape.kinds:
        return None
    if key.setting.convert is not None:
        return key.setting.convert(value, format_path(path))
    return _build(shape, value, path)


def _build(shape: Shape, value: Any, path: KeyPath) -> Any:
    """A checked JSON value as its field holds it: objects read into their classes."""
    if shape.section and isinstance(value, Mapping):
        return _read(shape.section, value, path)
    if shape.names and isinstance(value, Mapping):
        return {name: _element(shape.names, item, (*path, name)) for name, item in value.items()}
    if shape.open and isinstance(value, Mapping):
        return dict(value)
    return value


def _element(shape: Shape, value: Any, path: KeyPath) -> Any:
    if not has_kind(value, shape.kinds):
        raise mistyped(path, shape.kinds, value)
    return _build(shape, value, path)
