"""`crosskd cache list | clean`: the packed-feature cache (memory-mapped copies of the
feature pickles that train, test and demo make once and then only map).

An entry is stale when its source file is gone or has changed since it was packed (a changed
file is packed again into a new entry, and the old one is removed then), or when it predates
the record of its source's content.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from crosskd.commands.options import default_cache_dir
from crosskd.data.cache import CacheEntry, clean, list_entries


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `cache list` and `cache clean`."""
    parser = subparsers.add_parser("cache", help="list or clean the packed-feature cache",
                                   description=__doc__)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="each entry with its size, source and state",
                                 description="List each entry with its size, its source file "
                                 "and whether that file still exists unchanged.")
    cleaning = actions.add_parser("clean", help="remove all entries, or only the stale ones",
                                  description="Remove every entry (the next run packs again), "
                                  "or with --stale only those no run will read again.")
    for sub in (listing, cleaning):
        sub.add_argument("--cache_dir", "--cache-dir", type=Path, default=default_cache_dir(),
                         help="the cache folder (default: $CROSSKD_CACHE_DIR or "
                         f"{default_cache_dir()}, as train and test use)")
    cleaning.add_argument("--stale", action="store_true",
                          help="remove only entries whose source is gone or changed")
    listing.set_defaults(func=run_list)
    cleaning.set_defaults(func=run_clean)


def _size(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _line(entry: CacheEntry) -> str:
    source = entry.source or "(source not recorded)"
    return f"{_size(entry.size):>11}  {entry.state:<14}  {entry.path.name}  <- {source}"


def run_list(args: argparse.Namespace) -> int:
    """Print one line per entry and a total."""
    entries = list_entries(args.cache_dir)
    for entry in entries:
        print(_line(entry))
    stale = [entry for entry in entries if entry.stale]
    print(f"{len(entries)} entries, {_size(sum(e.size for e in entries))} in {args.cache_dir}; "
          f"{len(stale)} stale ({_size(sum(e.size for e in stale))}): "
          "`crosskd cache clean --stale` removes them")
    return 0


def run_clean(args: argparse.Namespace) -> int:
    """Remove the entries and say how much was freed."""
    removed = clean(args.cache_dir, stale_only=args.stale)
    for entry in removed:
        print(f"removed {_line(entry)}")
    print(f"removed {len(removed)} {'stale ' if args.stale else ''}entries "
          f"({_size(sum(e.size for e in removed))}) from {args.cache_dir}")
    return 0
