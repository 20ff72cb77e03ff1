"""Refuse unknown config keys and mistyped values before any data is read.

Built from the keys crosskd.config.schema derives from the typed parts; an unknown key names
the closest known one (`trainer.epoch`: did you mean trainer.epochs?).
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

from crosskd.config.keys import NULL, WILDCARD, has_kind, mistyped
from crosskd.config.paths import KeyPath, format_path, parse_path
from crosskd.errors import ConfigError
from crosskd.untrusted import terminal_safe

#: unknown keys one error names; a config of nothing but typos still gets one short line.
NAMED_AT_MOST = 12


@dataclass
class _Node:
    """One key of the schema: its accepted types, or why it is ignored, and its children."""

    kinds: tuple[type, ...] = (dict, NULL)
    ignored: str | None = None
    open: bool = False
    children: dict[str, _Node] = field(default_factory=dict)

    def child(self, key: str) -> _Node | None:
        return self.children.get(key) or self.children.get(WILDCARD)


def _insert(root: _Node, path: KeyPath) -> _Node:
    node = root
    for segment in path:
        node = node.children.setdefault(segment, _Node())
    return node


@functools.cache
def _root() -> _Node:
    # imported on first use: the parts declaring the keys name the builders' types (torch)
    from crosskd.config.schema import IGNORED, KNOWN
    root = _Node()
    for path, shape in KNOWN.items():
        node = _insert(root, path)
        node.kinds, node.open = shape.kinds, shape.open
    for pattern, reason in IGNORED.items():
        _insert(root, tuple(pattern.split("."))).ignored = reason
    # eval_settings is merged over the whole config: it may hold any other top-level key
    evaluation = root.children["eval_settings"]
    evaluation.open = False
    evaluation.children = {key: node for key, node in root.children.items()
                           if key != "eval_settings"}
    return root


def known_patterns(node: _Node | None = None, prefix: KeyPath = (), depth: int = 0
                   ) -> Iterator[KeyPath]:
    """Every key path of the schema (`*` for a name), eval_settings' copy one level deep."""
    for key, child in (_root() if node is None else node).children.items():
        yield (*prefix, key)
        if depth < 8:
            yield from known_patterns(child, (*prefix, key), depth + 1)


def _closest(path: KeyPath) -> str | None:
    """The known key closest to an unknown `path`, names filled in from `path`."""
    candidates = {}
    for pattern in known_patterns():
        if len(pattern) > len(path) + 1:
            continue
        concrete = tuple(path[i] if part == WILDCARD and i < len(path) else part
                         for i, part in enumerate(pattern))
        candidates[format_path(concrete)] = None
    match = difflib.get_close_matches(format_path(path), list(candidates), n=1, cutoff=0.6)
    return match[0] if match else None


def _suggestion(path: KeyPath) -> str:
    best = _closest(path)
    return f"did you mean {terminal_safe(best)}?" if best else ""


def unknown_key(path: KeyPath, where: str) -> ConfigError:
    """The error for an unknown key, with the closest known key when there is one."""
    return unknown_keys([path], where)


def unknown_keys(paths: list[KeyPath], where: str) -> ConfigError:
    """One error naming every unknown key (the first `NAMED_AT_MOST`), each with its closest
    known key: the user fixes them all in one go instead of one run per typo."""
    if len(paths) == 1:
        hint = _suggestion(paths[0])
        hint = f"; {hint}" if hint else " (see docs/USAGE.md for the known keys)"
        return ConfigError(f"{where}: unknown config key {_shown(paths[0])}{hint}")
    named = ", ".join(_with_suggestion(path) for path in paths[:NAMED_AT_MOST])
    more = (f" and {len(paths) - NAMED_AT_MOST} more" if len(paths) > NAMED_AT_MOST else "")
    return ConfigError(f"{where}: {len(paths)} unknown config keys: {named}{more} "
                       "(see docs/USAGE.md for the known keys)")


def _shown(path: KeyPath) -> str:
    """A key path as text that stays on one line (a key may hold a newline)."""
    return terminal_safe(format_path(path))


def _with_suggestion(path: KeyPath) -> str:
    hint = _suggestion(path)
    return f"{_shown(path)} ({hint})" if hint else _shown(path)


def check_config(config: Mapping[str, Any], where: str = "config") -> None:
    """Refuse unknown keys (all of them, in one error) or a value of the wrong JSON type
    anywhere in `config`."""
    unknown: list[KeyPath] = []
    problems: list[ConfigError] = []
    _check(_root(), config, (), unknown, problems)
    if unknown:
        raise unknown_keys(unknown, where)
    if problems:
        raise problems[0]


def _check(node: _Node, section: Mapping[str, Any], prefix: KeyPath,
           unknown: list[KeyPath], problems: list[ConfigError]) -> None:
    for key, value in section.items():
        path = (*prefix, str(key))
        child = node.child(str(key))
        if child is None:
            unknown.append(path)
        elif child.ignored is not None:
            continue
        elif not has_kind(value, child.kinds):
            problems.append(mistyped(path, child.kinds, value))
        elif isinstance(value, dict) and not child.open:
            _check(child, value, path, unknown, problems)


def check_path(text: str, where: str) -> KeyPath:
    """The parsed key path of an override, refused when no known key lies there."""
    path = parse_path(text)
    if not is_known(path):
        raise unknown_key(path, where)
    return path


def check_paths(texts: Iterable[str], where: str) -> list[KeyPath]:
    """The parsed key paths of several overrides; every unknown one is named in one error."""
    paths = [parse_path(text) for text in texts]
    unknown = [path for path in paths if not is_known(path)]
    if unknown:
        raise unknown_keys(unknown, where)
    return paths


def check_override_flags(flags: dict[str, Iterable[str]]) -> None:
    """The key paths of every override flag at once (`{"--custom_args": [...], "--set":
    [...]}`): the unknown ones of all flags in one error, so one run shows every typo."""
    problems = []
    for where, texts in flags.items():
        try:
            check_paths(texts, where)
        except ConfigError as err:
            problems.append(str(err))
    if problems:
        raise ConfigError("; ".join(problems))


def is_known(path: KeyPath) -> bool:
    """Whether a known key (or an open or ignored section holding it) lies at `path`."""
    node = _root()
    for segment in path:
        if node.open or node.ignored is not None:
            return True
        child = node.child(segment)
        if child is None:
            return False
        node = child
    return True
