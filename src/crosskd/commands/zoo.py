"""`crosskd zoo list | download NAME | eval NAME`: the published CrossKD checkpoints."""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path
from typing import Any

from crosskd.commands.device_flag import DEVICE_HELP
from crosskd.download.zoo import (CHECKPOINT_NAME, METRICS, ZOO, evaluate_model, fetch_model,
                                  find_entry, format_comparison, model_dir, read_manifest)
from crosskd.shipped import config_dir

DEFAULT_ZOO_DIR = "data/zoo"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `zoo list`, `zoo download` and `zoo eval`."""
    parser = subparsers.add_parser("zoo", help="published CrossKD models", description=__doc__)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the models with their published t2v results")
    fetch = actions.add_parser("download", help="download a model's trained_model.pth")
    evaluate = actions.add_parser("eval", help="download a model if needed and run the test "
                                               "protocol, printing our numbers beside the paper's")
    for sub in (listing, fetch, evaluate):
        sub.add_argument("--zoo-dir", "--zoo_dir", default=DEFAULT_ZOO_DIR,
                         help="where checkpoints are kept")
    for sub in (fetch, evaluate):
        sub.add_argument("name", metavar="NAME", help="a model name from `crosskd zoo list`")
        sub.add_argument("--force", action="store_true", help="download again")
    evaluate.add_argument("--device", help=DEVICE_HELP)
    evaluate.add_argument("--root", default="data",
                          help="data folder holding the dataset features")
    evaluate.add_argument("--config-dir", "--config_dir", type=Path, default=None,
                          help="folder of the published configs (default: the configs installed with crosskd)")
    evaluate.add_argument("--output", "--out", type=Path, default=None,
                          help="also write the metrics and the comparison to this JSON file "
                          "(default: not written)")
    listing.set_defaults(func=run_list)
    fetch.set_defaults(func=run_download)
    evaluate.set_defaults(func=run_eval)


def run_list(args: argparse.Namespace) -> int:
    """Print every model with its published t2v numbers and whether it is downloaded."""
    header = " ".join(f"{key:>5}" for key in METRICS)
    print(f"{'name':<20} {'dataset':<12} {'method':<27} {header}  downloaded")
    for entry in ZOO:
        numbers = " ".join(f"{value:5.1f}" if key != "MedR" else f"{value:5.0f}"
                           for key, value in entry.published_t2v().items())
        present = "yes" if read_manifest(entry, args.zoo_dir) else "no"
        print(f"{entry.name:<20} {entry.dataset:<12} {entry.method:<27} {numbers}  {present}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    """Download one model and report where it is."""
    entry = find_entry(args.name)
    path = fetch_model(entry, args.zoo_dir, force=args.force)
    manifest = read_manifest(entry, args.zoo_dir) or {}
    print(f"{entry.name}: {path} (sha256 {manifest.get('sha256')}, config "
          f"configs/{entry.config_name})")
    return 0


def evaluate_checkpoint(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """crosskd.train.evaluate.evaluate_checkpoint, imported when `zoo eval` runs: it loads
    torch, which `zoo list` and `zoo download` do without."""
    from crosskd.train.evaluate import evaluate_checkpoint as evaluate

    return evaluate(*args, **kwargs)


def _evaluate_config(config: dict[str, Any], checkpoint: Path, device: Any) -> dict[str, Any]:
    """The test protocol of `zoo eval`: the entry's config parsed, its process context
    detected (crosskd.process), the checkpoint evaluated."""
    from crosskd.config import parse_experiment
    from crosskd.process import detect

    experiment = parse_experiment(config)
    return evaluate_checkpoint(experiment, checkpoint, detect(device, experiment.runtime.amp))


def run_eval(args: argparse.Namespace) -> int:
    """Evaluate one model on the test split and compare with the published numbers."""
    from crosskd.train.device import resolve_device  # loads torch: not for list and download

    entry = find_entry(args.name)
    fetch_model(entry, args.zoo_dir, force=args.force)
    device = resolve_device(args.device)
    metrics = evaluate_model(entry, functools.partial(_evaluate_config, device=device),
                             zoo_root=args.zoo_dir,
                             data_root=args.root,
                             config_dir=args.config_dir or config_dir())
    print(format_comparison(entry, metrics))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        record = {"name": entry.name, "checkpoint": str(model_dir(entry, args.zoo_dir) /
                                                         CHECKPOINT_NAME),
                  "published_t2v": entry.published_t2v(), "metrics": metrics}
        args.output.write_text(json.dumps(record, indent=2, default=float) + "\n",
                               encoding="utf-8")
    return 0
