"""`crosskd train` (and `python3 train.py`): train from a config, then test the best model."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from crosskd.commands.options import (add_common_options, check_out_writable, config_from_args,
                                      parse_seeds, write_json)
from crosskd.config import parse_custom_args, parse_set_args
from crosskd.errors import UserError
from crosskd.train.device import resolve_device
from crosskd.train.distributed import join_torchrun_job
from crosskd.train.report import format_result
from crosskd.train.runs import resume_run, results_object, train_seeds

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` subcommand."""
    parser = subparsers.add_parser("train", help="train a model from a config",
                                   description=__doc__)
    add_common_options(parser)
    parser.add_argument("--seeds", help="comma-separated seeds, one run each (e.g. 0,1,2); "
                        "the results are reported as mean (std) (default: the config's seed)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train one run per seed (or resume one), test each, report and write `--out`.

    Under torchrun every rank trains; rank 0 alone reports and writes `--out`."""
    seeds = parse_seeds(args.seeds)
    if args.resume and seeds:
        raise UserError("--resume continues one run; drop --seeds")
    check_out_writable(args.out)
    if args.resume:
        job, device = join_torchrun_job(resolve_device(args.device))
        seed, metrics = resume_run(args.resume,
                                   lambda stored: config_from_args(args, fallback=stored).raw,
                                   device, args.cache_dir, command=_command(args))
        results = {seed: metrics} if metrics is not None else {}
        name = Path(args.resume).name
    else:
        config = config_from_args(args)
        if config is None:
            raise UserError("train needs --config <config.json> (or --resume <run folder>)")
        name = Path(args.config).stem
        job, device = join_torchrun_job(resolve_device(args.device))
        results = train_seeds(config, name, seeds or [config.seed], device,
                              args.cache_dir, command=_command(args))
    if job is not None and not job.writes_files:
        return 0
    summary = results_object(results)
    print(format_result(name, summary))
    write_json(args.out, summary)
    if args.out:
        log.info("wrote the test metrics to %s", args.out)
    return 0


def _command(args: argparse.Namespace) -> dict[str, Any]:
    """What run.json records of the command line: the arguments and the resolved overrides."""
    return {"program": sys.argv[0], "arguments": list(getattr(args, "argv", None) or []),
            "overrides": [f"{key}={value}" for key, value in
                          parse_custom_args(args.custom_args) + parse_set_args(args.set_args)]}
