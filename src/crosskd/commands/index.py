"""`crosskd index`: embed a collection's videos once with a trained model, for `crosskd search`
and `crosskd serve`.

The collection is every video of an own collection (`crosskd extract`), captioned or not,
in any split or none; of a published dataset, the split the config's final test uses
(`eval_settings` merged over the config, as test.py does). --split restricts either to one
split. Videos are grouped by which experts they have; each group is searched with an
inner-product index whose answers equal scoring every video with the model
(docs/SEARCH.md). With --qbnorm the index also keeps each video's QB-Norm normaliser from a
bank of captions (the training split's, or --qbnorm-bank FILE), so search ranks as
`test --qbnorm` does.

Indexing again into the same --out updates that index: only new videos and videos whose
features changed are embedded, removed ones are dropped, and the result is what a fresh
build gives; --rebuild builds it afresh instead.
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
from crosskd.errors import UserError
from crosskd.process import detect
from crosskd.qbnorm import DEFAULT_BETA
from crosskd.search.backends import check_backend
from crosskd.search.bank import BankChoice
from crosskd.search.build import update_index, with_split
from crosskd.search.index import MANIFEST, Index
from crosskd.search.storage import DTYPES, check_dtype
from crosskd.search.update import Plan
from crosskd.search.videos import as_dataset_of_folder
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
    parser.add_argument("--split", help="split to index (default: every video of an own "
                        "collection; the final test's split of a published dataset)")
    parser.add_argument("--media-root", "--media_root", dest="media_roots", action="append",
                        type=Path, default=[], metavar="FOLDER",
                        help="also copy videos that the dataset's extraction.json names from "
                        "this folder into the index, and look for videos that moved there "
                        "by file name (repeatable; default: only media inside the dataset "
                        "folder)")
    parser.add_argument("--out", type=Path, required=True, help="index folder to write; an "
                        "index there is updated")
    parser.add_argument("--rebuild", action="store_true",
                        help="build the index at --out afresh instead of updating it")
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
    """Build (or update) and write the index, then say what it holds."""
    check_dtype(args.dtype)
    options = given_index_options(args)
    check_backend(args.backend)
    qbnorm = bank_choice(args)
    config = load_config(args.config) if args.config else stored_config(args.checkpoint)
    if args.data is not None:
        config = apply_overrides(config, [("data_loader.args.data_dir",
                                           json.dumps(str(args.data)))])
    config = as_dataset_of_folder(with_split(config, args.split), args.split)
    previous = _previous(args.out, args.rebuild)
    context = detect(resolve_device(args.device))
    index, plan = update_index(config, args.checkpoint, previous, args.dtype, args.backend,
                               args.cache_dir, args.media_roots, qbnorm, context.device,
                               args.split is None, **options)
    replaced = args.out.exists()
    index.save(args.out, replace=replaced)
    _report(args, index, plan if previous is not None else None, replaced)
    return 0


def _previous(out: Path, rebuild: bool) -> Index | None:
    """The index at `out` to update (None: there is none, or it is rebuilt); a folder there
    that is no index is left alone."""
    if not out.exists():
        return None
    if not (out / MANIFEST).is_file():
        raise UserError(f"{out} exists and is not a search index; choose a new --out folder "
                        "or remove it")
    if rebuild:
        return None
    try:
        return Index.load(out)
    except UserError as err:  # a damaged index: only a fresh build mends it
        raise UserError(f"{err}; --rebuild builds it afresh in place") from None


def _report(args: argparse.Namespace, index: Index, plan: Plan | None, replaced: bool) -> None:
    """What the index holds (and, for an update, what changed), in lines for the terminal:
    names and ids come from the dataset's files, so every line is escaped."""
    settings = f"({args.dtype}, {args.backend})"
    summary = index.collection().summary()
    if plan is None:
        verb = "rebuilt" if replaced else "indexed"
        lines = [f"{verb} {summary} into {args.out} {settings}; availability patterns:"]
    else:
        unit = "video" if index.moments is None else "segment"
        lines = [f"updated {args.out}: {summary} {settings}", *plan.lines(unit),
                 "availability patterns:"]
    lines += [f"  {line}" for line in index.describe_patterns()]
    if index.querybank is not None:
        bank = index.querybank
        again = ("; normalisers folded again over every video (each depends on all of them)"
                 if plan is not None else "")
        lines.append(f"QB-Norm: beta {bank.beta:g}, bank of {bank.size} captions "
                     f"({index.info['qbnorm_bank']}), {int(bank.active.sum())} of {len(index)} "
                     f"videos active{again}")
    lines.append(f"search: crosskd search {args.out} {_example_query(index)}   or   "
                 f"crosskd serve {args.out}")
    for line in lines:
        print(terminal_safe(line))


def _example_query(index: Index) -> str:
    """A query the index answers: one of its captions, else free text."""
    if len(index.captions):
        owner, slot = int(index.captions.owner[0]), int(index.captions.slot[0])
        return f"--caption {index.video_ids[owner]}:{slot}"
    return '"WORDS TO LOOK FOR"'
