"""Config keys, each declared once: as a field of the typed part (a frozen dataclass) that
reads it.

A declaring class's fields are keys of the original JSON format: the key is the field's name,
or `setting(key=...)`, a path below the class's `SECTION` (the top level unless it names one).
The field's type says what the JSON may hold:

- `bool`, `int`, `str`; `float` is any JSON number; `list[...]` an array (the part checks its
  items); `Any` any value; `X | None` null as well;
- a dataclass: an object holding its fields' keys; left out (or null, where the JSON may
  hold null) it holds their defaults, and a field typed `X | None` is None;
- `dict[str, X]`: an object of any names (`*`: experts, feature types), each an X;
  `dict[str, Any]`: an object whose keys its builder checks (an optimizer's arguments).

`setting(json=...)` gives what the JSON holds where the field's type differs (a Monitor read
from a string by `convert`). crosskd.config.schema derives the known-key table from these
fields, and crosskd.config.reading builds a part from a config, naming a missing or mistyped
key.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping as AbstractMapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, Callable

from crosskd.config.paths import KeyPath, format_path, parse_path
from crosskd.errors import ConfigError

NULL = type(None)
NUMBER = (int, float)
ANY = (object,)
#: the key standing for any name in a `dict[str, X]` object
WILDCARD = "*"
_SETTING = "crosskd.config"

Convert = Callable[[Any, str], Any]


def has_kind(value: Any, kinds: tuple[type, ...]) -> bool:
    """`isinstance`, except that a bool is not an int unless bool is listed."""
    if kinds == ANY:
        return True
    return isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)


def mistyped(path: KeyPath, kinds: tuple[type, ...], value: Any) -> ConfigError:
    """The error for a value of the wrong JSON type at `path`."""
    wanted = " or ".join("null" if kind is NULL else kind.__name__ for kind in kinds)
    return ConfigError(f"config key {format_path(path)} must be {wanted}, "
                       f"not {type(value).__name__} ({value!r:.60})")


@dataclass(frozen=True)
class Setting:
    """How a field reads its key (what `setting` attaches to it)."""

    key: str | None = None
    json: Any = None
    convert: Convert | None = None
    missing: str = ""


def setting(default: Any = MISSING, *, key: str | None = None, json: Any = None,
            convert: Convert | None = None, missing: str = "",
            default_factory: Callable[[], Any] | Any = MISSING) -> Any:
    """A field read from a config key: `key` where it is not the field's name (a path below
    the class's SECTION), `json` what the JSON holds where it is not the field's type,
    `convert(value, key_text)` the field's value from the JSON one, `missing` the hint when a
    key without a default is left out."""
    return field(default=default, default_factory=default_factory,
                 metadata={_SETTING: Setting(key, json, convert, missing)})


@dataclass(frozen=True)
class Shape:
    """What a key may hold: its JSON types, and the keys below it."""

    kinds: tuple[type, ...]
    section: type | None = None
    names: Shape | None = None
    open: bool = False

    @property
    def is_object(self) -> bool:
        """Whether the key holds an object with keys of its own."""
        return bool(self.section or self.names or self.open)


def shape_of(hint: Any) -> Shape:
    """The JSON shape a field type stands for (see the module's docstring)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = [shape_of(arg) for arg in typing.get_args(hint)]
        below = next((member for member in members if member.is_object), Shape(()))
        return dataclasses.replace(below, kinds=tuple(k for m in members for k in m.kinds))
    if hint is Any:
        return Shape(ANY)
    if hint is float:
        return Shape(NUMBER)
    if hint in (bool, int, str, NULL):
        return Shape((hint,))
    if is_dataclass(hint):
        return Shape((dict,), section=hint)
    base = origin or hint
    if base in (list, tuple):
        return Shape((list,))
    if base in (dict, AbstractMapping):
        value = (typing.get_args(hint) or (str, Any))[1]
        return Shape((dict,), open=True) if value is Any else Shape((dict,), names=shape_of(value))
    raise TypeError(f"a config key cannot hold {hint!r}")


@dataclass(frozen=True)
class Declared:
    """One field of a declaring class: the key it reads and what that key may hold."""

    source: dataclasses.Field
    path: KeyPath
    shape: Shape
    optional: bool

    @property
    def setting(self) -> Setting:
        """How the field reads its key (`setting`'s arguments, or the plain defaults)."""
        return self.source.metadata.get(_SETTING, Setting())

    @property
    def has_default(self) -> bool:
        """Whether the key may be left out."""
        return (self.source.default is not MISSING
                or self.source.default_factory is not MISSING)

    def default(self) -> Any:
        """The value of the field when its key is left out."""
        if self.source.default is not MISSING:
            return self.source.default
        return self.source.default_factory()


@functools.cache
def declared(cls: type) -> tuple[Declared, ...]:
    """The keys `cls` declares, in field order."""
    hints = typing.get_type_hints(cls)
    return tuple(_declared(item, hints[item.name]) for item in fields(cls))


def _declared(item: dataclasses.Field, hint: Any) -> Declared:
    declaration = item.metadata.get(_SETTING, Setting())
    natural = shape_of(hint)
    shape = shape_of(declaration.json) if declaration.json is not None else natural
    return Declared(item, parse_path(declaration.key or item.name), shape,
                    optional=NULL in natural.kinds)


def section_path(cls: type) -> KeyPath:
    """Where the keys of a declaring class lie: its `SECTION` (the top level by default)."""
    section = getattr(cls, "SECTION", "")
    return parse_path(section) if section else ()
