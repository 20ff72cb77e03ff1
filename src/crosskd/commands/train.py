"""`crosskd train` (and `python3 train.py`): train from a config, then test the best model."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from crosskd.checkpoint.run_state import load_run_state, resolve_resume_path
from crosskd.commands.options import (add_common_options, check_out_writable, config_from_args,
                                      parse_seeds, write_json)
from crosskd.config import ExperimentConfig, parse_custom_args, parse_set_args, require
from crosskd.errors import UserError
from crosskd.process import detect
from crosskd.train.device import resolve_device
from crosskd.train.distributed import join_process_group
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
    checkpoint = resolve_resume_path(args.resume) if args.resume else None
    if checkpoint is not None:
        experiment, name = _resumed(args, checkpoint), Path(args.resume).name
    else:
        experiment = config_from_args(args)
        if experiment is None:
            raise UserError("train needs --config <config.json> (or --resume <run folder>)")
        name = Path(args.config).stem
    context = detect(resolve_device(args.device), experiment.runtime.amp)
    join_process_group(context)
    if checkpoint is not None:
        metrics = resume_run(checkpoint, experiment, context, args.cache_dir,
                             command=_command(args))
        results = {experiment.seed: metrics} if metrics is not None else {}
    else:
        results = train_seeds(experiment, name, seeds or [experiment.seed], context,
                              args.cache_dir, command=_command(args))
    if not context.writes_files:
        return 0
    summary = results_object(results)
    print(format_result(name, summary))
    write_json(args.out, summary)
    if args.out:
        log.info("wrote the test metrics to %s", args.out)
    return 0


def _resumed(args: argparse.Namespace, checkpoint: Path) -> ExperimentConfig:
    """The config a resumed run finishes with: the stored one (or --config) with the
    overrides, and always the stored seed, since the RNG states continue from the checkpoint."""
    stored = load_run_state(checkpoint)["config"]
    seed = require(stored, "seed", int, default=0)
    return config_from_args(args, fallback=stored).with_seed(seed)


def _command(args: argparse.Namespace) -> dict[str, Any]:
    """What run.json records of the command line: the arguments and the resolved overrides."""
    return {"program": sys.argv[0], "arguments": list(getattr(args, "argv", None) or []),
            "overrides": [f"{key}={value}" for key, value in
                          parse_custom_args(args.custom_args) + parse_set_args(args.set_args)]}
