"""The `crosskd` console script: dispatches to one subcommand module per verb."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import threading
from typing import Iterator, Sequence

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


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler stopping the job), unwound like Ctrl-C: files are cleaned up."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into `Terminated` while a command runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; user mistakes end with one line on stderr and exit status 2,
    Ctrl-C with status 130 and SIGTERM with 143 (also while the modules are still importing)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    command = f"crosskd {argv[0]}" if argv and argv[0] in COMMANDS else "crosskd"
    try:
        with _sigterm_unwinds():
            args = build_parser().parse_args(argv)
            return int(args.func(args) or 0)
    except UserError as err:
        print(f"{command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except Terminated:
        print(f"{command}: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
