"""`crosskd index`: embed a collection's videos once with a trained model, for `crosskd search`
and `crosskd serve`.

The collection is the split the config's final test uses (`eval_settings` merged over the
config, as test.py does), or --split. Videos are grouped by which experts they have; each
group is searched with an inner-product index whose answers equal scoring every video with
the model (docs/SEARCH.md). With --qbnorm the index also keeps each video's QB-Norm
normaliser from a bank of captions (the training split's, or --qbnorm-bank FILE), so search
ranks as `test --qbnorm` does.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from crosskd.commands.backend_flags import add_backend_flags, given_index_options
from crosskd.commands.device_flag import DEVICE_VALUES
from crosskd.commands.options import default_cache_dir, existing_checkpoint, existing_file
from crosskd.commands.test import qbnorm_beta_flag
from crosskd.config import apply_overrides, load_config
from crosskd.checkpoint.reader import stored_config
from crosskd.qbnorm import DEFAULT_BETA
from crosskd.search.backends import check_backend
from crosskd.search.bank import BankChoice
from crosskd.search.build import build_index, with_split
from crosskd.search.storage import DTYPES, check_dtype
from crosskd.shipped import resolve_config
from crosskd.train.device import resolve_device
from crosskd.untrusted import terminal_safe

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `index` subcommand."""
    parser = subparsers.add_parser("index", help="build a search index of a video collection "
                                   "with a trained model", description=__doc__)
    parser.add_argument("--checkpoint", required=True, type=existing_checkpoint,
                        help="our checkpoint or run folder, or an original trained_model.pth")
    parser.add_argument("--config", type=resolve_config,
                        help="experiment config (default: the one stored in the checkpoint)")
    parser.add_argument("--data", type=Path, metavar="DATA_DIR",
                        help="dataset folder (sets data_loader.args.data_dir; default: the config's)")
    parser.add_argument("--split", help="split to index (default: the final test's split)")
    parser.add_argument("--media-root", "--media_root", dest="media_roots", action="append",
                        type=Path, default=[], metavar="FOLDER",
                        help="also copy videos that the dataset's extraction.json names from "
                        "this folder into the index (repeatable; default: only media inside "
                        "the dataset folder)")
    parser.add_argument("--out", type=Path, required=True, help="index folder to write (new)")
    parser.add_argument("--dtype", default="float32", choices=DTYPES,
                        help="how the video embeddings are stored")
    add_backend_flags(parser)
    qbnorm = parser.add_argument_group(
        "QB-Norm", "store each video's querybank normaliser, so that search ranks as "
        "test --qbnorm does (docs/SEARCH.md)")
    qbnorm.add_argument("--qbnorm", action="store_true",
                        help="fold a query bank into the index (default: off)")
    qbnorm.add_argument("--qbnorm-beta", "--qbnorm_beta", metavar="BETA",
                        help=f"inverse temperature, a number > 0; implies --qbnorm "
                        f"(default: {DEFAULT_BETA:g})")
    qbnorm.add_argument("--qbnorm-bank", "--qbnorm_bank", type=existing_file, metavar="FILE",
                        help="bank captions from this file (CSV, JSON lines or MSR-VTT JSON, as "
                        "crosskd extract --captions), encoded by the dataset's text encoder; "
                        "implies --qbnorm (default: the training split's captions)")
    parser.add_argument("--cache_dir", "--cache-dir", type=Path, default=default_cache_dir(),
                        help="packed-feature cache")
    parser.add_argument("--device", default="cpu",
                        help=f"where the videos and captions are embedded: {DEVICE_VALUES}")
    parser.set_defaults(func=run)


def bank_choice(args: argparse.Namespace) -> BankChoice | None:
    """The query bank the QB-Norm flags ask for (None: no QB-Norm)."""
    args.qbnorm = args.qbnorm or args.qbnorm_bank is not None
    beta = qbnorm_beta_flag(args)
    return None if beta is None else BankChoice(beta, args.qbnorm_bank)


def run(args: argparse.Namespace) -> int:
    """Build and write the index, then say what it holds."""
    check_dtype(args.dtype)
    options = given_index_options(args)
    check_backend(args.backend)
    qbnorm = bank_choice(args)
    config = load_config(args.config) if args.config else stored_config(args.checkpoint)
    if args.data is not None:
        config = apply_overrides(config, [("data_loader.args.data_dir",
                                           json.dumps(str(args.data)))])
    config = with_split(config, args.split)
    index = build_index(config, args.checkpoint, args.dtype, args.backend, args.cache_dir,
                        args.media_roots, qbnorm, resolve_device(args.device), **options)
    index.save(args.out)
    # names and ids come from the dataset's files: escaped for the terminal
    print(terminal_safe(f"indexed {len(index)} videos and {len(index.captions)} captions of "
                        f"{index.info['dataset']} {index.info['split']} into {args.out} "
                        f"({args.dtype}, {args.backend}); availability patterns:"))
    for line in index.describe_patterns():
        print(f"  {terminal_safe(line)}")
    if index.querybank is not None:
        bank = index.querybank
        print(terminal_safe(f"QB-Norm: beta {bank.beta:g}, bank of {bank.size} captions "
                            f"({index.info['qbnorm_bank']}), {int(bank.active.sum())} of "
                            f"{len(index)} videos active"))
    print(terminal_safe(f"search: crosskd search {args.out} --caption "
                        f"{index.video_ids[0]}:0   or   crosskd serve {args.out}"))
    return 0
