"""`crosskd report`: a self-contained HTML page about a model on its test split.

RUN_OR_INDEX is a run folder or checkpoint (its stored config, or --config, says which
data; the final test's split is embedded) or an index built by `crosskd index`. The page
shows each query's rank of its own video, the top videos of the worst queries with their
captions, the recall-at-K curve and the mean mixture weight of each expert.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crosskd.commands.device_flag import DEVICE_VALUES
from crosskd.commands.options import default_cache_dir
from crosskd.config import load_config
from crosskd.diskwrites import write_text_atomically
from crosskd.checkpoint.reader import stored_config
from crosskd.checkpoint.run_state import BEST_NAME, LAST_NAME
from crosskd.errors import UserError
from crosskd.search.index import MANIFEST, Index
from crosskd.shipped import resolve_config


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `report` subcommand."""
    parser = subparsers.add_parser("report", help="an HTML page of a model's test-split "
                                   "rankings", description=__doc__)
    parser.add_argument("source", type=Path, metavar="RUN_OR_INDEX",
                        help="run folder, checkpoint or index folder")
    parser.add_argument("--out", type=Path, default=Path("report.html"), help="page to write")
    parser.add_argument("--config", type=resolve_config,
                        help="config of a checkpoint (default: the one stored in it)")
    parser.add_argument("--split", help="split to report on (default: the final test's split)")
    parser.add_argument("--cache_dir", "--cache-dir", type=Path, default=default_cache_dir(),
                        help="packed-feature cache")
    parser.add_argument("--device", default="cpu", help="where a run's videos and captions "
                        f"are embedded (not used with an index): {DEVICE_VALUES}")
    parser.set_defaults(func=run)


def _check_source(source: Path) -> None:
    """Refuse a RUN_OR_INDEX that is none of the three, naming report's own argument (the
    checkpoint reader's messages name train's --resume)."""
    if not source.exists():
        raise UserError(f"RUN_OR_INDEX {source}: no such run folder, checkpoint or index folder")
    if source.is_dir() and not any((source / name).is_file() for name in (BEST_NAME, LAST_NAME)):
        raise UserError(f"RUN_OR_INDEX {source}: the folder holds no checkpoint ({BEST_NAME} "
                        f"or {LAST_NAME}) and is no search index (no {MANIFEST}); give a run "
                        "folder, a checkpoint file or an index built by crosskd index")


def _index(args: argparse.Namespace) -> Index:
    if (args.source / MANIFEST).is_file():
        return Index.load(args.source)
    if args.source.suffix == ".json":
        raise UserError(f"{args.source} holds aggregate metrics; per-query ranks need the run "
                        "folder (or checkpoint) or an index: crosskd report RUN_FOLDER")
    _check_source(args.source)
    from crosskd.search.build import build_index, with_split
    from crosskd.train.device import resolve_device
    config = load_config(args.config) if args.config else stored_config(args.source)
    return build_index(with_split(config, args.split), args.source,
                       cache_dir=args.cache_dir, device=resolve_device(args.device))


def run(args: argparse.Namespace) -> int:
    """Write the page and say where it is."""
    from crosskd.search.report import render
    index = _index(args)
    if not len(index.captions):
        raise UserError(f"{args.source}: the index holds no captions to rank")
    title = f"crosskd report: {index.collection().title()} ({args.source.name})"
    write_text_atomically(args.out, render(index, title), "choose another --out")
    print(f"report: {args.out} ({len(index.captions)} queries, {len(index)} videos)")
    return 0
