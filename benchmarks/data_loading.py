"""Packing and loading a synthetic MSRVTT at real scale: time and peak RSS, float32 and float16.

    python3 benchmarks/data_loading.py --out /tmp/bench-data             # real scale (~50 GB of disk)
    python3 benchmarks/data_loading.py --out /tmp/b --videos 500 --caption-tokens 4 12  # quick

Writes the dataset once (seeded), then runs each measurement in a fresh process so that peak
RSS (VmHWM) belongs to that step alone: load (packing on a cold cache), 20 training batches of
64 and one evaluation batch of 64 videos x 20 captions. Prints a table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _machine import cpu_description

REAL_DIMS = {"scene.densenet161.0": 2208, "r2p1d.r2p1d-ig65m-kinetics.0": 512,
             "imagenet.senet154.0": 2048, "r2p1d.r2p1d-ig65m.0": 512,
             "imagenet.resnext101_32x48d.0": 2048}


def _spec(args: argparse.Namespace):
    from crosskd.data.synth import SynthSpec
    return SynthSpec(dataset="MSRVTT", videos=args.videos, captions_per_video=20,
                     visual_dims=dict(REAL_DIMS), max_expert_tokens=32,
                     missing_fraction={"audio": 0.1, "speech": 0.3}, text_feat="gpt2-xl-finetune",
                     text_dim=1600, caption_tokens=tuple(args.caption_tokens), teacher_dim=768,
                     expert_store=None, seed=0)


def _config(args: argparse.Namespace) -> dict:
    from crosskd.data.synth import example_config
    config = example_config(_spec(args), args.out, split_name="full-test", max_text_tokens=37)
    config["data_loader"]["args"]["max_tokens"].update({"audio": 29, "speech": 32})
    return config


def _status_gib(field: str) -> float:
    """A memory figure of this process from /proc (VmHWM = peak RSS since exec)."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 2**20
    raise RuntimeError(f"{field} not in /proc/self/status")


def _measure(args: argparse.Namespace) -> dict:
    """One load (packing if the cache is cold), plus a few batches, in this process."""
    from crosskd.config import data_spec
    from crosskd.data.retrieval import RetrievalData
    from crosskd.data.sampling import epoch_batches
    start = time.perf_counter()
    data = RetrievalData.load(data_spec(_config(args)), cache_dir=args.cache, dtype=args.dtype)
    load_s = time.perf_counter() - start
    loaded_rss = _status_gib("VmRSS")
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    for _, batch in zip(range(20), epoch_batches(data.train, 64, rng)):
        pass
    train_batch_ms = (time.perf_counter() - start) / 20 * 1000
    start = time.perf_counter()
    next(data.eval.batches(64))
    eval_batch_ms = (time.perf_counter() - start) * 1000
    return {"load_s": load_s, "rss_loaded_gb": loaded_rss, "peak_rss_gb": _status_gib("VmHWM"), "train_batch_ms": train_batch_ms,
            "eval_batch_ms": eval_batch_ms}


def _child(args: argparse.Namespace, dtype: str) -> dict:
    command = [sys.executable, __file__, "--out", str(args.out), "--videos", str(args.videos),
               "--caption-tokens", *map(str, args.caption_tokens), "--cache", str(args.cache),
               "--dtype", dtype, "--measure"]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _sizes(root: Path) -> tuple[float, float]:
    pickles = [p for p in root.rglob("*") if p.suffix in {".pkl", ".pickle"}]
    total = sum(p.stat().st_size for p in pickles) / 2**30
    text = sum(p.stat().st_size for p in root.glob("aggregated_text_feats/*")) / 2**30
    return total, text


def main() -> None:
    print(f"CPU: {cpu_description()}", flush=True)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--videos", type=int, default=10_000)
    parser.add_argument("--caption-tokens", type=int, nargs=2, default=(4, 37))
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.cache = args.cache or args.out / "cache"
    if args.measure:
        print(json.dumps(_measure(args)))
        return
    from crosskd.data.synth import write_synthetic
    if not (args.out / "dataset_meta.json").is_file():
        start = time.perf_counter()
        write_synthetic(_spec(args), args.out)
        print(f"wrote dataset in {time.perf_counter() - start:.0f} s")
    total, text = _sizes(args.out / "high-quality/structured-symlinks")
    print(f"source pickles: {total:.2f} GiB (text features {text:.2f} GiB)")
    print(f"{'dtype':8} {'step':8} {'load s':>8} {'RSS loaded GiB':>15} {'peak RSS GiB':>13} "
          f"{'train batch ms':>15} {'eval batch ms':>14} {'cache GiB':>10}")
    for dtype in ("float32", "float16"):
        shutil.rmtree(args.cache, ignore_errors=True)
        for step in ("first", "cached"):
            row = _child(args, dtype)
            cache = sum(p.stat().st_size for p in args.cache.rglob("*") if p.is_file()) / 2**30
            print(f"{dtype:8} {step:8} {row['load_s']:8.1f} {row['rss_loaded_gb']:15.2f} "
                  f"{row['peak_rss_gb']:13.2f} "
                  f"{row['train_batch_ms']:15.1f} {row['eval_batch_ms']:14.1f} {cache:10.2f}",
                  flush=True)
    shutil.rmtree(args.cache, ignore_errors=True)


if __name__ == "__main__":
    main()
