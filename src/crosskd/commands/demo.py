"""`crosskd demo`: CE+ with and without caption distillation on a synthetic MSRVTT, offline.

Writes a synthetic dataset in the real MSRVTT layout, trains both configs of
configs/demo/ with the same seed, tests both on the full-test split, prints a model-zoo
style table and plots validation R@1 and the training loss per epoch of both runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from crosskd.commands.device_flag import DEVICE_HELP
from crosskd.config import apply_overrides, as_experiment, load_config
from crosskd.data.synth import SynthSpec, write_synthetic
from crosskd.shipped import config_dir
from crosskd.train.device import resolve_device
from crosskd.train.plots import RunCurves, plot_runs
from crosskd.train.report import describe_protocol, format_table
from crosskd.train.runs import run_folder, train_and_test

log = logging.getLogger(__name__)

#: table label -> config file stem
VARIANTS = {"CE+": "msrvtt-demo-ce", "CE+ + caption KD": "msrvtt-demo-cecap"}
VAL_R1 = "val_t2v_metrics_R1"
PLOT_NAME = "demo.png"
#: the demo's synthetic MSRVTT: enough videos (50 validation, 300 test) and little enough
#: signal per caption that no metric reaches 100 (measured in docs/USAGE.md).
DEMO_VIDEOS = 1000
DEMO_DATA = {"topics": 8, "latent_dim": 5}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `demo` subcommand."""
    parser = subparsers.add_parser("demo", help="train and compare CE+ with and without "
                                   "caption distillation on synthetic data (no download)",
                                   description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("crosskd-demo"),
                        help="folder for the data, runs, table and plot")
    parser.add_argument("--seed", type=int, default=0, help="seed of both runs")
    parser.add_argument("--epochs", type=int,
                        help="epochs of each run (default: the demo configs' trainer.epochs)")
    parser.add_argument("--videos", type=int, default=DEMO_VIDEOS,
                        help="synthetic videos to generate (65%% train, 5%% val, 30%% test)")
    parser.add_argument("--device", help=DEVICE_HELP)
    parser.set_defaults(func=run)


def _demo_config(stem: str, out: Path, seed: int, epochs: int | None) -> dict[str, Any]:
    path = config_dir() / "demo" / f"{stem}.json"
    overrides = [("data_loader.args.data_dir", json.dumps(str(out / "data" / "MSRVTT"))),
                 ("trainer.save_dir", json.dumps(str(out / "runs"))), ("seed", str(seed))]
    if epochs is not None:
        overrides.append(("trainer.epochs", str(epochs)))
    return apply_overrides(load_config(path), overrides)


def _curves(config: dict[str, Any], run_dir: Path, result: dict[str, Any]) -> RunCurves:
    """A run's per-epoch validation R@1 and loss, and the epoch its monitor kept."""
    history = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    monitor = as_experiment(config).trainer.monitor
    best, best_epoch = monitor.worst, history[-1]["epoch"]
    for row in history:
        if monitor.key in row and monitor.improved(row[monitor.key], best):
            best, best_epoch = row[monitor.key], row["epoch"]
    validated = [row for row in history if VAL_R1 in row]
    return RunCurves(epochs=[row["epoch"] for row in validated],
                     val_r1=[row[VAL_R1] for row in validated],
                     loss_epochs=[row["epoch"] for row in history],
                     loss=[row["loss"] for row in history], best_epoch=best_epoch,
                     test_r1=result["t2v"]["R1"],
                     test_geometric_mean=result["t2v"]["geometric_mean_R1-R5-R10"])


def run(args: argparse.Namespace) -> int:
    """Generate the data, train and test both variants, write the table and the plot."""
    started = time.monotonic()
    device = resolve_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)  # the demo models are tiny: threads cost more than they give
    out = args.out.resolve()
    write_synthetic(SynthSpec(dataset="MSRVTT", videos=args.videos, seed=args.seed, **DEMO_DATA),
                    out / "data" / "MSRVTT")
    results, curves = {}, {}
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    for label, stem in VARIANTS.items():
        config = _demo_config(stem, out, args.seed, args.epochs)
        run_dir = run_folder(config, stem, args.seed, stamp)
        log.info("demo: training %s (%s) in %s", label, stem, run_dir)
        results[label] = train_and_test(config, run_dir, device, cache_dir=out / "cache")
        curves[label] = _curves(config, run_dir, results[label])
    protocol = describe_protocol(next(iter(results.values()))["protocol"])
    table = "\n\n".join(format_table(results, direction) for direction in ("t2v", "v2t"))
    report = (f"{table}\n\nprotocol: {protocol}; synthetic data (seed {args.seed}), "
              f"both runs seed {args.seed}\n")
    (out / "results.md").write_text(report, encoding="utf-8")
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    plot = plot_runs(curves, out / PLOT_NAME,
                     title=f"crosskd demo: synthetic data, seed {args.seed} (MSRVTT layout, "
                     f"{args.videos} videos)\ntest: {protocol}")
    print(report)
    print(f"data:    {out / 'data' / 'MSRVTT'}\nruns:    {out / 'runs'}\n"
          f"table:   {out / 'results.md'} (and results.json)\nplot:    {plot}\n"
          f"time:    {time.monotonic() - started:.0f} s")
    return 0
