"""`crosskd test` (and `python3 test.py`): evaluate a checkpoint (ours or the original's)."""

from __future__ import annotations

import argparse
import logging
import re
from typing import Any

from crosskd.commands.options import (add_common_options, check_out_writable, config_from_args,
                                      write_json)
from crosskd.errors import UserError
from crosskd.checkpoint.reader import stored_config
from crosskd.process import detect
from crosskd.qbnorm import DEFAULT_BETA, check_beta
from crosskd.train.device import resolve_device
from crosskd.train.evaluate import evaluate_checkpoint
from crosskd.train.report import VIDEO_LEVEL, format_table, format_result
from crosskd.untrusted import terminal_safe

log = logging.getLogger(__name__)

#: a decimal number in ASCII (`float()` also takes 'nan', 'inf', '1_0' and non-ASCII digits).
_ASCII_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `test` subcommand."""
    parser = subparsers.add_parser("test", help="evaluate a trained checkpoint",
                                   description=__doc__)
    add_common_options(parser)
    parser.add_argument("--eval_from_training_config", "--eval-from-training-config",
                        action="store_true",
                        help="merge the config's eval_settings (the published test protocol)")
    parser.add_argument("--qbnorm", action="store_true",
                        help="t2v with querybank normalisation (QB-Norm, Dynamic Inverted "
                        "Softmax), every training caption in the bank (default: the config's "
                        "qbnorm key, else off)")
    parser.add_argument("--qbnorm-beta", "--qbnorm_beta", metavar="BETA",
                        help="QB-Norm's inverse temperature, a number > 0; implies --qbnorm "
                        f"(default: the config's qbnorm.beta, else {DEFAULT_BETA:g})")
    parser.set_defaults(func=run)


def qbnorm_beta_flag(args: argparse.Namespace) -> float | None:
    """The beta the flags ask for (None: the config decides); a UserError for a bad value."""
    if args.qbnorm_beta is None:
        return DEFAULT_BETA if args.qbnorm else None
    text = args.qbnorm_beta.strip() if args.qbnorm_beta.isascii() else args.qbnorm_beta
    try:
        if not _ASCII_DECIMAL.fullmatch(text):
            raise ValueError(f"{terminal_safe(args.qbnorm_beta)!r} is not a decimal number")
        return check_beta(float(text))
    except ValueError as err:
        raise UserError(f"--qbnorm-beta: {err}") from None


def run(args: argparse.Namespace) -> int:
    """Evaluate `--resume` with the config (or the one stored in the checkpoint)."""
    if not args.resume:
        raise UserError("test needs --resume <checkpoint or run folder>")
    beta = qbnorm_beta_flag(args)
    check_out_writable(args.out)
    config = config_from_args(args)
    if config is None:
        config = config_from_args(args, fallback=stored_config(args.resume))
    if args.eval_from_training_config:
        config = config.evaluation()
    context = detect(resolve_device(args.device), config.runtime.amp)
    metrics = evaluate_checkpoint(config, args.resume, context, cache_dir=args.cache_dir,
                                  qbnorm_beta=beta)
    print(format_result(args.resume, metrics))
    if "qbnorm" in metrics:
        print("\n" + qbnorm_table(metrics))
    write_json(args.out, metrics)
    return 0


def qbnorm_table(metrics: dict[str, Any]) -> str:
    """t2v before and after QB-Norm (and at video level, for a segmented split), with the
    bank it used."""
    qbnorm = metrics["qbnorm"]
    after = f"after QB-Norm (beta {qbnorm['beta']:g})"
    table = _before_and_after(metrics, after)
    if "video_level" in metrics:
        table += f"\n\n{VIDEO_LEVEL}:\n\n{_before_and_after(metrics['video_level'], after)}"
    return (table + f"\n\nQB-Norm bank: {qbnorm['bank_size']} training "
            f"captions, {qbnorm['active_videos']} active videos, "
            f"{qbnorm['normalised_queries']} queries normalised")


def _before_and_after(metrics: dict[str, Any], after: str) -> str:
    """The t2v table of `metrics` before QB-Norm (its qbnorm.t2v_before) and after."""
    rows = {"before QB-Norm": {"t2v": metrics["qbnorm"]["t2v_before"]}, after: metrics}
    return format_table(rows, "t2v")
