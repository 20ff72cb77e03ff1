"""`crosskd demo`: CE+ with and without caption distillation on a synthetic MSRVTT, offline.

Writes a synthetic dataset in the real MSRVTT layout, trains both configs of
configs/demo/ with the same seed, tests both on the full-test split, prints a model-zoo
style table and plots the validation geometric mean per epoch.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from crosskd.config import apply_overrides, load_config
from crosskd.data.synth import SynthSpec, write_synthetic
from crosskd.errors import UserError
from crosskd.train.device import resolve_device
from crosskd.train.plots import plot_validation_curves
from crosskd.train.report import describe_protocol, format_table
from crosskd.train.runs import run_folder, train_and_test

log = logging.getLogger(__name__)

DEMO_CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "demo"
#: table label -> config file stem
VARIANTS = {"CE+": "msrvtt-demo-ce", "CE+ + caption KD": "msrvtt-demo-cecap"}
MONITOR_KEY = "val_t2v_metrics_geometric_mean_R1-R5-R10"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `demo` subcommand."""
    parser = subparsers.add_parser("demo", help="train and compare CE+ with and without "
                                   "caption distillation on synthetic data (no download)",
                                   description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("crosskd-demo"),
                        help="folder for the data, runs, table and plot (default ./crosskd-demo)")
    parser.add_argument("--seed", type=int, default=0, help="seed of both runs")
    parser.add_argument("--epochs", type=int, help="override the demo configs' epochs")
    parser.add_argument("--videos", type=int, default=SynthSpec.videos,
                        help="synthetic videos to generate")
    parser.add_argument("--device", help="GPU index, 'cuda:N' or 'cpu' (default)")
    parser.set_defaults(func=run)


def _demo_config(stem: str, out: Path, seed: int, epochs: int | None) -> dict[str, Any]:
    path = DEMO_CONFIGS / f"{stem}.json"
    if not path.is_file():
        raise UserError(f"demo config {path} not found: run the demo from a crosskd checkout "
                        "(pip install -e .)")
    overrides = [("data_loader.args.data_dir", json.dumps(str(out / "data" / "MSRVTT"))),
                 ("trainer.save_dir", json.dumps(str(out / "runs"))), ("seed", str(seed))]
    if epochs is not None:
        overrides.append(("trainer.epochs", str(epochs)))
    return apply_overrides(load_config(path), overrides)


def run(args: argparse.Namespace) -> int:
    """Generate the data, train and test both variants, write the table and the plot."""
    started = time.monotonic()
    device = resolve_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)  # the demo models are tiny: threads cost more than they give
    out = args.out.resolve()
    write_synthetic(SynthSpec(dataset="MSRVTT", videos=args.videos, seed=args.seed),
                    out / "data" / "MSRVTT")
    results, curves = {}, {}
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    for label, stem in VARIANTS.items():
        config = _demo_config(stem, out, args.seed, args.epochs)
        run_dir = run_folder(config, stem, args.seed, stamp)
        log.info("demo: training %s (%s) in %s", label, stem, run_dir)
        results[label] = train_and_test(config, run_dir, device, cache_dir=out / "cache")
        history = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        curves[label] = [(row["epoch"], row[MONITOR_KEY]) for row in history if MONITOR_KEY in row]
    protocol = describe_protocol(next(iter(results.values()))["protocol"])
    table = "\n\n".join(format_table(results, direction) for direction in ("t2v", "v2t"))
    report = (f"{table}\n\nprotocol: {protocol}; synthetic data (seed {args.seed}), "
              f"both runs seed {args.seed}\n")
    (out / "results.md").write_text(report, encoding="utf-8")
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    plot = plot_validation_curves(curves, out / "val_geometric_mean.png",
                                  title="validation t2v geometric mean of R@1, R@5, R@10")
    print(report)
    print(f"data:    {out / 'data' / 'MSRVTT'}\nruns:    {out / 'runs'}\n"
          f"table:   {out / 'results.md'} (and results.json)\nplot:    {plot}\n"
          f"time:    {time.monotonic() - started:.0f} s")
    return 0
