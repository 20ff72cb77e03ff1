"""Key paths of a config: `a.b.c`, where a double-quoted segment holds a key with dots.

Expert names contain dots (`imagenet.senet154.0`), so a path quotes them:
`data_loader.args.feat_aggregation."imagenet.senet154.0".temporal`. Inside quotes a backslash
escapes the next character (`\\"`, `\\\\`). The same syntax works in `--set`, `--custom_args`
and every error message, so a key named in a message can be pasted back as an override.
"""

from __future__ import annotations

from crosskd.errors import ConfigError

KeyPath = tuple[str, ...]
#: characters that make a segment need quotes when written back.
_SPECIAL = set('."\\=@+ \t')


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The segment quoted at `text[start] == '"'` and the index after its closing quote."""
    chars, i = [], start + 1
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            chars.append(text[i + 1])
            i += 2
        elif text[i] == '"':
            return "".join(chars), i + 1
        else:
            chars.append(text[i])
            i += 1
    raise ConfigError(f"config key path {text!r}: a quoted segment is not closed; write "
                      'a."name.with.dots".b')


def parse_path(text: str) -> KeyPath:
    """`a."b.c".d` -> ("a", "b.c", "d"); an empty or malformed path is a ConfigError."""
    segments, i = [], 0
    while True:
        if text.startswith('"', i):
            segment, i = _quoted(text, i)
        else:
            end = text.find(".", i)
            end = len(text) if end < 0 else end
            segment, i = text[i:end], end
            if '"' in segment:
                raise ConfigError(f"config key path {text!r}: quote a whole segment, as in "
                                  'a."name.with.dots".b')
        if not segment:
            raise ConfigError(f"config key path {text!r} has an empty segment; write "
                              "section.key (quote keys holding dots)")
        segments.append(segment)
        if i == len(text):
            return tuple(segments)
        if text[i] != ".":
            raise ConfigError(f"config key path {text!r}: expected '.' after a quoted segment")
        i += 1


def format_path(path: KeyPath) -> str:
    """The text of a key path, quoting the segments that need it (inverse of parse_path)."""
    return ".".join(_format_segment(segment) for segment in path)


def _format_segment(segment: str) -> str:
    if segment and not _SPECIAL.intersection(segment):
        return segment
    return '"' + segment.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_unquoted(text: str, separator: str) -> list[str]:
    """`text` split at every `separator` outside double quotes (which may hold it)."""
    parts, start, quoted, i = [], 0, False, 0
    while i < len(text):
        char = text[i]
        if quoted and char == "\\":
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts
