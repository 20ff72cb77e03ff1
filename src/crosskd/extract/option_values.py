"""`--expert-option NAME:key=value` and `--text-encoder name:key=value` values (and the options
a dataset's extraction.json records) turned into the types the constructors take: a number
is parsed strictly (ASCII digits, a bounded range) here, so `batch=²` or `dim=10**9` is one line
naming the option instead of a traceback or a huge allocation inside a model."""

from __future__ import annotations

import inspect
from typing import Any, Mapping

from crosskd.errors import UserError
from crosskd.untrusted import ascii_int

#: the largest whole-number option (batch sizes, widths, token counts)
MAX_WHOLE_NUMBER = 65536


def typed_options(constructor: type, options: Mapping[str, Any], what: str) -> dict[str, Any]:
    """`options` with each value converted to the type of the parameter's default in
    `constructor`'s signature (int options must be 1..MAX_WHOLE_NUMBER); names the
    constructor does not take are left for it to refuse."""
    typed = {}
    for key, value in options.items():
        default = _default(constructor, key)
        typed[key] = _whole_number(value, f"{what} option {key}") \
            if isinstance(default, int) and not isinstance(default, bool) else value
    return typed


def _default(cls: type, key: str) -> Any:
    """The default of `key` in the first `__init__` along the class's bases that names it
    (subclasses often pass `*args, **kwargs` on)."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameter = inspect.signature(init).parameters.get(key)
        if parameter is not None:
            return parameter.default
    return None


def _whole_number(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UserError(f"{what}: expected a whole number, got {type(value).__name__}")
    try:
        return ascii_int(str(value), what, low=1, high=MAX_WHOLE_NUMBER)
    except ValueError as err:
        raise UserError(str(err)) from None
