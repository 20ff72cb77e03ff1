"""`crosskd download features DATASET`: fetch, verify and unpack a published features tarball."""

from __future__ import annotations

import argparse
from pathlib import Path

from crosskd.config import load_config
from crosskd.download.features import TARBALLS, fetch_features
from crosskd.download.required import VARIANTS, missing_files, published_config_name
from crosskd.shipped import config_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `download features`."""
    parser = subparsers.add_parser("download", help="download published data",
                                   description=__doc__)
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    features = kinds.add_parser("features", help="the high-quality expert features of a dataset",
                                description="Download (resumably), check the sha1 of, and unpack "
                                            "a dataset's features into ROOT/<dataset>/high-quality/"
                                            "structured-symlinks, then list files the published "
                                            "configs need that are missing.")
    features.add_argument("dataset", metavar="DATASET",
                          help=f"one of {', '.join(TARBALLS)} (case-insensitive)")
    features.add_argument("--root", default="data", help="data folder")
    features.add_argument("--config-dir", "--config_dir", type=Path, default=None,
                          help="folder of the published configs to check against "
                               "(default: the configs installed with crosskd)")
    features.add_argument("--keep-archive", "--keep_archive", action="store_true",
                          help="keep the .tar.gz after unpacking")
    features.add_argument("--force", action="store_true",
                          help="download and unpack again even if already installed")
    features.set_defaults(func=run_features)


def report_missing(dataset_dir: Path, folder: str, config_dir: Path) -> int:
    """Print which files each published config of the dataset lacks; 1 if any, else 0."""
    status = 0
    for variant in VARIANTS:
        path = config_dir / published_config_name(folder, variant)
        if not path.is_file():
            print(f"cannot check against {path}: config not found (use --config-dir)")
            status = 1
            continue
        missing = missing_files(dataset_dir, load_config(path))
        if missing:
            status = 1
            print(f"{len(missing)} file(s) needed by {path.name} are missing under {dataset_dir}:")
            print("\n".join(f"  {name}" for name in missing))
        else:
            print(f"all files needed by {path.name} are present")
    return status


def run_features(args: argparse.Namespace) -> int:
    """Install one dataset's features, then check them against its published configs."""
    result = fetch_features(args.dataset, args.root, keep_archive=args.keep_archive,
                            force=args.force)
    tarball = result.tarball
    print(f"{tarball.dataset} features in {result.dataset_dir} "
          f"(sha1 {result.sha1}, {result.release})")
    return report_missing(result.dataset_dir, tarball.folder, args.config_dir or config_dir())
