"""`crosskd test` (and `python3 test.py`): evaluate a checkpoint (ours or the original's)."""

from __future__ import annotations

import argparse
import logging

from crosskd.commands.options import (add_common_options, check_out_writable, config_from_args,
                                      write_json)
from crosskd.errors import UserError
from crosskd.checkpoint.reader import stored_config
from crosskd.train.device import resolve_device
from crosskd.train.evaluate import evaluate_checkpoint
from crosskd.train.report import format_result

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `test` subcommand."""
    parser = subparsers.add_parser("test", help="evaluate a trained checkpoint",
                                   description=__doc__)
    add_common_options(parser)
    parser.add_argument("--eval_from_training_config", "--eval-from-training-config",
                        action="store_true",
                        help="merge the config's eval_settings (the published test protocol)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate `--resume` with the config (or the one stored in the checkpoint)."""
    if not args.resume:
        raise UserError("test needs --resume <checkpoint or run folder>")
    check_out_writable(args.out)
    config = config_from_args(args)
    if config is None:
        config = config_from_args(args, fallback=stored_config(args.resume))
    if args.eval_from_training_config:
        config = config.evaluation()
    metrics = evaluate_checkpoint(config, args.resume, resolve_device(args.device),
                                  cache_dir=args.cache_dir)
    print(format_result(args.resume, metrics))
    write_json(args.out, metrics)
    return 0
