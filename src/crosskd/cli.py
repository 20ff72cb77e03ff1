"""The `crosskd` console script: dispatches to one subcommand module per verb."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from crosskd.errors import UserError

# Each name is a module in crosskd.commands exposing `register(subparsers)`; the parser it
# adds sets `func(args) -> int`.
COMMANDS: tuple[str, ...] = (
    "download",
    "zoo",
    "inspect",
    "train",
    "test",
    "demo",
    "synth",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="crosskd", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"crosskd.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; user mistakes end with one line on stderr and exit status 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"crosskd {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"crosskd {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
