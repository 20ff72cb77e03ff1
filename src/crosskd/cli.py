"""crosskd: train and evaluate video-text retrieval models (CE+, TeachText-CE+) with and
without the within-to-between caption distillation loss (ACCV 2022), on the published
features, on synthetic data or on your own videos (`crosskd extract`), and search what they
index by text from the command line, an HTTP API or a web page (`crosskd serve`).

Start with `crosskd demo` (no download, under a minute on a laptop CPU). `crosskd COMMAND
--help` describes each command and all its options with their defaults.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import textwrap
from typing import Sequence

from crosskd import __version__
from crosskd.diskwrites import DISK_FULL_OR_READ_ONLY, write_error
from crosskd.errors import UserError
from crosskd.signals import Terminated, signals_deferred, sigterm_unwinds

# Each name is a module in crosskd.commands exposing `register(subparsers)`; the parser it
# adds sets `func(args) -> int`. A command's module is imported only when that command runs
# (or for the top-level help), so `crosskd zoo list` starts without loading torch.
COMMANDS: tuple[str, ...] = (
    "demo",
    "train",
    "test",
    "download",
    "zoo",
    "inspect",
    "synth",
    "cache",
    "extract",
    "index",
    "search",
    "serve",
    "report",
)
EPILOG = """examples:
  crosskd demo                                   synthetic videos: extract, train two models, test, index
  crosskd download features MSRVTT               fetch and check a dataset's features
  crosskd extract VIDEOS --captions FILE --out DIR   your own videos into a dataset
  python3 train.py --config configs/msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json
  crosskd zoo eval msrvtt-cecap                  evaluate a published checkpoint
  crosskd index --checkpoint RUN --out INDEX     index a collection, then crosskd serve INDEX
docs: README.md and docs/USAGE.md"""
#: exit status of a process whose reader went away (128 + SIGPIPE), as `yes | head` shows.
BROKEN_PIPE_STATUS = 141


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """A description's paragraphs written on one line are wrapped, those with line breaks
    (docstrings, examples) kept as written; an option's default is appended to its help
    unless the help already says it, or there is none to show (None, or an off flag)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join(
            paragraph if "\n" in paragraph.strip("\n") else
            textwrap.fill(paragraph.strip(), width, initial_indent=indent,
                          subsequent_indent=indent)
            for paragraph in text.split("\n\n"))

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text:
            return text
        return super()._get_help_string(action)


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """`parser` and every subcommand parser below it."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += _parsers(child)
    return found


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser with every subcommand (or only the one named `only`) registered.

    Each parser records itself as `args.command_parser`, so a usage error in a command shows that
    command's usage, not the top-level one.
    """
    parser = argparse.ArgumentParser(prog="crosskd", description=__doc__, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"crosskd {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        if only in (None, name):
            importlib.import_module(f"crosskd.commands.{name}").register(subparsers)
    for each in _parsers(parser):
        each.formatter_class = HelpFormatter
        each.set_defaults(command_parser=each)
    return parser


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand named first on the command line, if it is one."""
    return argv[0] if argv and argv[0] in COMMANDS else None


def _quiet_broken_pipe() -> int:
    """The reader of stdout went away (`crosskd inspect --json | head`): stop without a
    traceback, also at exit, when Python flushes stdout again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return BROKEN_PIPE_STATUS


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; user mistakes end with one line on stderr and exit status 2,
    Ctrl-C with status 130 and SIGTERM with 143 (also while the modules are still importing)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = _chosen_command(argv)
    command = f"crosskd {chosen}" if chosen else "crosskd"
    try:
        with sigterm_unwinds():
            with signals_deferred():  # a signal inside an extension's init is not re-raised
                parser = build_parser(chosen)  # as itself: delivered once the imports are done
            args, unknown = parser.parse_known_args(argv)
            if unknown:
                args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
            args.argv = argv  # what run records keep of the command line
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
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except OSError as err:  # a write without a message of its own met a full/read-only disk
        if err.errno not in DISK_FULL_OR_READ_ONLY:
            raise
        print(f"{command}: error: {_unnamed_write_error(err)}", file=sys.stderr)
        return 2


def _unnamed_write_error(err: OSError) -> str:
    """A write failure that reached the top without a message of its own: the file when the OS
    named it (with its own disk's free space), else only the cause, never a guessed disk."""
    fix = "free disk space (or use a writable folder) and run the command again"
    if err.filename:
        return str(write_error(err.filename, err, fix))
    return f"a write failed ({err.strerror or err}); {fix}"


if __name__ == "__main__":
    sys.exit(main())
