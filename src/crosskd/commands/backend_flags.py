"""The search backends' flags, built from their registry (crosskd.search.backends):
`crosskd index` gets --backend and every backend's build options, `crosskd search` and
`serve` every backend's search options, so a new backend reaches the command line without a
change here."""

from __future__ import annotations

import argparse

from crosskd.commands.options import whole_number
from crosskd.errors import UserError
from crosskd.search.backends import (BACKENDS, EXACT, BackendOption, index_options,
                                     search_options)


def add_backend_flags(parser: argparse.ArgumentParser) -> None:
    """--backend, and a group of every backend's build options (`crosskd index`)."""
    described = "; ".join(f"{name}: {cls.description}" for name, cls in BACKENDS.items())
    parser.add_argument("--backend", default=EXACT, choices=BACKENDS,
                        help=f"how each availability pattern is searched; {described}")
    group = parser.add_argument_group(
        "backend options", "how a backend builds its index (each refused with a backend that "
        "does not take it)")
    for option, takers in index_options().values():
        _add_option(group, option, takers)


def add_search_flags(parser: argparse.ArgumentParser) -> None:
    """Every backend's search options (`crosskd search`, `serve`); an index whose backend
    does not take one ignores it."""
    for option, takers in search_options().values():
        _add_option(parser, option, takers)


def _add_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup,
                option: BackendOption, takers: tuple[str, ...]) -> None:
    """`--NAME` (and `--NA_ME` when the name has underscores), None when not given, so a
    backend's own default applies and a flag given with the wrong backend can be told."""
    parser.add_argument(*_flags(option), dest=option.name, metavar=option.metavar,
                        type=whole_number(low=option.low, high=option.high),
                        help=f"{option.help} ({' / '.join(takers)}; default: "
                        f"{option.shown_default})")


def _flags(option: BackendOption) -> list[str]:
    return list(dict.fromkeys(["--" + option.name.replace("_", "-"), "--" + option.name]))


def given_index_options(args: argparse.Namespace) -> dict[str, int]:
    """The build options given on the command line, each refused in one line unless
    --backend takes it."""
    given = {name: getattr(args, name) for name in index_options()
             if getattr(args, name) is not None}
    refused = [f"{_flags(option)[0]} only applies to --backend {' or '.join(takers)}"
               for name, (option, takers) in index_options().items()
               if name in given and args.backend not in takers]
    if refused:
        raise UserError("; ".join(refused))
    return given


def given_search_options(args: argparse.Namespace) -> dict[str, int]:
    """The search options given on the command line."""
    return {name: getattr(args, name) for name in search_options()
            if getattr(args, name) is not None}
