"""crosskd's train.py before and after a change: two checkouts, one machine, runs alternating.

    git worktree add /tmp/before <revision>
    python3 benchmarks/before_after.py /tmp/before --repeat 3

The data and config are vs_original.py's (one synthetic MSRVTT at the real size, the CE+ cecap
config for one epoch with validation and the final test; generated once under --work). Each
round runs train.py of the `before` checkout, then of this one, each from a cold packed-feature
cache and with the same timing stamps (_stamps.py), so that the machine's drift between rounds
falls on both sides alike. The table gives the medians and the ratios after / before; a single
run of each side differs by 10 % on a quiet 2-core machine, which is why rounds are repeated.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from _machine import cpu_description, load_average
from _msrvtt_bench import REPO, BenchData, make_dataset, write_config
from vs_original import ORIGINAL_CONFIG, Side, benchmark_config, run_train

log = logging.getLogger("before_after")

ROWS = (("load", "loading the data", "s"), ("batch", "training, s per steady batch", "s"),
        ("epoch", "one training epoch", "s"), ("validation", "validation", "s"),
        ("train_s", "train.py whole process", "s"), ("train_cpu", "train.py CPU time", "s"),
        ("train_rss", "train.py peak RSS", "GiB"))


def _side(name: str, tree: Path, cache: Path) -> Side:
    return Side(name, Path(sys.executable), tree,
                {"CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(tree / "src")},
                flags=["--device", "cpu", "--cache_dir", str(cache)])


def table(before: Side, after: Side) -> str:
    lines = ["| what | before | after | after / before |", "|---|---|---|---|"]
    for key, label, unit in ROWS:
        old, new = before.median(key), after.median(key)
        if old is None or new is None:
            continue
        lines.append(f"| {label} | {old:.2f} {unit} | {new:.2f} {unit} | {new / old:.3f} |")
    return "\n".join(lines)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path, help="the checkout to compare with (a worktree)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (medians over them)")
    parser.add_argument("--work", type=Path,
                        default=Path(tempfile.gettempdir()) / "crosskd-vs-original",
                        help="vs_original.py's folder: the data is generated there once")
    return parser.parse_args()


def bench_config(work: Path) -> Path:
    """vs_original.py's data (generated under `work` once) and config, as a file."""
    data_dir = work / "data" / "MSRVTT"
    make_dataset(BenchData(1000, 250, 250, 20), data_dir)
    config = benchmark_config(REPO / "configs" / Path(ORIGINAL_CONFIG).name, data_dir,
                              work / "runs", REPO)
    return write_config(config, work / "configs_bench" / "msrvtt-cecap.json")


def main() -> None:
    args = _parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    print(f"CPU: {cpu_description()}", flush=True)
    work = args.work.resolve()
    config_path = bench_config(work)
    cache = work / "crosskd-cache"
    sides = (_side("before", args.before.resolve(), cache), _side("after", REPO, cache))
    loads = [load_average()]
    for _ in range(args.repeat):
        for side in sides:
            shutil.rmtree(cache, ignore_errors=True)
            shutil.rmtree(work / "runs", ignore_errors=True)
            run_train(side, config_path, work)
        loads.append(load_average())
    print(f"\ntrain.py of {sides[0].cwd} (before) and {REPO} (after), alternating, medians of "
          f"{args.repeat} round(s); load average {', '.join(f'{x:.2f}' for x in loads)}\n")
    print(table(*sides))
    for side in sides:
        for failure in side.failures:
            print(f"{side.name}: {failure}")


if __name__ == "__main__":
    main()
