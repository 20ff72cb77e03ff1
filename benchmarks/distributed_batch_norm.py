"""Local or synchronised batch norm under torchrun, measured on the conformance configs.

    python3 benchmarks/distributed_batch_norm.py [--conformance DIR] [--seeds 0,1,2] [--out DIR]

Trains the three golden configs (cecap, ttcap, baseline on MSRVTT-mini: 48 training videos,
batch 16, 8 epochs) three ways: one process; two gloo processes with crosskd's synchronised
batch norm (statistics of the global batch); two gloo processes with each rank's own
statistics (batch norm left local, as plain DDP does; this script's worker switches the
synchronisation off). Prints the final test metrics of each and the largest difference of
the last checkpoint's float weights from the one-process run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

import crosskd.train.distributed
from crosskd.checkpoint.run_state import LAST_NAME, load_run_state
from crosskd.config import load_config, parse_experiment
from crosskd.process import detect
from crosskd.train.distributed import join_process_group
from crosskd.train.runs import train_and_test
from conformance_training import CONFIGS, DEFAULT_CONFORMANCE, KEYS

MODES = ("one process", "2 ranks, synchronised", "2 ranks, local")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, help="folder for the runs (default: temporary)")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--conformance", type=Path, default=Path(
        os.environ.get("CROSSKD_CONFORMANCE", DEFAULT_CONFORMANCE)))
    return parser.parse_args()


def train_all(conformance: Path, out: Path, seeds: list[int], mode: str) -> None:
    """Train every config and seed into `<out>/<mode>/<config>_seed<seed>`."""
    if mode == "2 ranks, local":
        crosskd.train.distributed.synchronise_batch_norms = lambda model, shards: None
    rank = os.environ.get("RANK", "0")
    context = detect(torch.device("cpu"))
    join_process_group(context)
    os.chdir(conformance)  # the configs' data_dir is relative to this folder
    for name in CONFIGS:
        for seed in seeds:
            config = load_config(f"configs/msrvtt-mini-{name}.json")
            config["seed"] = seed
            config["trainer"]["tensorboard"] = False
            run_dir = out / mode / f"{name}_seed{seed}"
            run_dir.mkdir(parents=True, exist_ok=True)
            train_and_test(parse_experiment(config), run_dir, context,
                           cache_dir=out / f"cache-rank{rank}")


def launch(args: argparse.Namespace, out: Path, mode: str) -> None:
    """Train in this process, or in two under torchrun."""
    seeds = [int(s) for s in args.seeds.split(",")]
    if mode == "one process":
        torch.set_num_threads(1)  # as each torchrun worker (OMP_NUM_THREADS=1)
        train_all(args.conformance, out, seeds, mode)
        return
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node=2", __file__, "--worker", mode, "--out", str(out),
                    "--seeds", args.seeds, "--conformance", str(args.conformance)],
                   check=True)


def weights_apart(left: Path, right: Path) -> float:
    """The largest difference between two checkpoints' float weights."""
    a, b = load_run_state(left)["state_dict"], load_run_state(right)["state_dict"]
    return max((a[k] - b[k]).abs().max().item() for k in a if a[k].is_floating_point())


def main() -> None:
    args = parse_args()
    out = (args.out or Path(tempfile.mkdtemp(prefix="crosskd-ddp-bn-"))).resolve()
    if args.worker:
        train_all(args.conformance, out, [int(s) for s in args.seeds.split(",")], args.worker)
        return
    for mode in MODES:
        launch(args, out, mode)
    seeds = [int(s) for s in args.seeds.split(",")]
    print("| config | training | " + " | ".join(f"t2v {k}" for k in KEYS)
          + " | weights apart from one process (max) |")
    print("|---|---|" + "---|" * (len(KEYS) + 1))
    for name in CONFIGS:
        for mode in MODES:
            runs = [out / mode / f"{name}_seed{seed}" for seed in seeds]
            metrics = [json.loads((run / "test_metrics.json").read_text())["t2v"]
                       for run in runs]
            means = " | ".join(f"{statistics.fmean(m[k] for m in metrics):.1f}" for k in KEYS)
            apart = max(weights_apart(out / MODES[0] / run.name / LAST_NAME, run / LAST_NAME)
                        for run in runs)
            print(f"| {name} | {mode} | {means} | {apart:.2g} |")
    print(f"means over seeds {args.seeds}; runs in {out}")


if __name__ == "__main__":
    main()
