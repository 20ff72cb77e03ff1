"""Train the three conformance configs (cecap, ttcap, baseline) for seeds 0, 1, 2 with our
trainer and print our final test metrics beside the original implementation's.

Same data (the MSRVTT-mini golden dataset), same configs, same epochs; the RNG streams differ
(caption sampling, shuffling, initialisation), so runs are compared in level, not bit for bit.

    python3 benchmarks/conformance_training.py [--conformance DIR] [--out DIR] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from crosskd.config import load_config, parse_experiment
from crosskd.process import detect
from crosskd.train.runs import train_and_test

DEFAULT_CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"
CONFIGS = ("cecap", "ttcap", "baseline")
KEYS = ("R1", "R5", "R10", "MedR", "geometric_mean_R1-R5-R10")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conformance", type=Path,
                        default=Path(os.environ.get("CROSSKD_CONFORMANCE", DEFAULT_CONFORMANCE)))
    parser.add_argument("--out", type=Path, help="folder for runs and results.json "
                        "(default: a temporary folder)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return parser.parse_args()


def theirs(conformance: Path) -> tuple[dict, dict]:
    """The original's test metrics and per-epoch validation logs of every config and seed."""
    expected = json.loads((conformance / "expected_test_metrics.json").read_text())
    test = dict(expected["all_runs_test_metrics"])
    logs = json.loads((conformance / "training_log.json").read_text())["runs"]
    return test, logs


def row(label: str, t2v: dict, val_best: float) -> str:
    cells = " | ".join(f"{t2v[key]:.1f}" for key in KEYS)
    return f"| {label} | {cells} | {val_best:.1f} |"


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    out = args.out or Path(tempfile.mkdtemp(prefix="crosskd-conformance-training-"))
    out = out.resolve()
    test_theirs, logs_theirs = theirs(args.conformance)
    os.chdir(args.conformance)  # the configs' data_dir is relative to this folder
    monitor = "val_t2v_metrics_geometric_mean_R1-R5-R10"
    results: dict = {}
    lines = ["| config / seed / implementation | R@1 | R@5 | R@10 | MdR | GeoM | best val GeoM |",
             "|---|---|---|---|---|---|---|"]
    for name in CONFIGS:
        for seed in seeds:
            config = load_config(f"configs/msrvtt-mini-{name}.json")
            config["seed"] = seed
            run_dir = out / "runs" / f"{name}_seed{seed}"
            started = time.monotonic()
            experiment = parse_experiment(config)
            context = detect(torch.device("cpu"), experiment.runtime.amp)
            ours = train_and_test(experiment, run_dir, context, cache_dir=out / "cache")
            seconds = time.monotonic() - started
            history = json.loads((run_dir / "metrics.json").read_text())
            ours_val = max(r[monitor] for r in history)
            their_val = max(r[monitor] for r in logs_theirs[name][f"seed_{seed}"]["epochs"])
            their_test = test_theirs[name][f"seed_{seed}"]["t2v_metrics"]
            results[f"{name}/seed_{seed}"] = {"ours": ours, "theirs_t2v": their_test,
                                              "ours_best_val": ours_val,
                                              "theirs_best_val": their_val,
                                              "seconds": seconds}
            lines.append(row(f"{name} / {seed} / ours", ours["t2v"], ours_val))
            lines.append(row(f"{name} / {seed} / original", their_test, their_val))
    for name in CONFIGS:
        for who in ("ours", "original"):
            values = [results[f"{name}/seed_{s}"]["ours"]["t2v"] if who == "ours"
                      else results[f"{name}/seed_{s}"]["theirs_t2v"] for s in seeds]
            mean = {k: statistics.fmean(v[k] for v in values) for k in KEYS}
            vals = [results[f"{name}/seed_{s}"][f"{'ours' if who == 'ours' else 'theirs'}_best_val"]
                    for s in seeds]
            lines.append(row(f"{name} / mean / {who}", mean, statistics.fmean(vals)))
    protocol = next(iter(results.values()))["ours"]["protocol"]
    print("\n".join(lines))
    print(f"\nt2v on {protocol['dataset']}-mini {protocol['split']}, "
          f"{protocol['captions_per_video']} caption slots per video, "
          f"{protocol['num_queries']} queries, {protocol['num_videos']} videos; "
          f"best val GeoM on full-val (16 videos x 20 captions)")
    print(f"training time per run (s): "
          f"{statistics.fmean(r['seconds'] for r in results.values()):.1f} (mean), "
          f"torch threads {args.threads}")
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"runs and results.json in {out}")


if __name__ == "__main__":
    main()
