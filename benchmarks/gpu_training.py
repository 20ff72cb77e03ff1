"""A 100-epoch MSRVTT-scale training on one GPU: seconds per epoch, total, validation metric.

    python3 benchmarks/gpu_training.py                                   # on the GPU machine
    python3 benchmarks/gpu_training.py --device cpu --train 64 --val 16 --captions 2 \
        --variants fp32:2,bf16:1 --work /tmp/crosskd-gpu-smoke           # smoke test, CPU

Generates (seeded, on the machine itself) a synthetic MSRVTT with the real widths and the
full-val split sizes: 6,513 training and 497 validation videos, with --captions captions
per video (default 5 instead of MSRVTT's 20, to keep the generation under a minute and the
resident caption tensor at ~7 GB). Then trains the published CE+ caption-distillation config
(262.7 M parameters, batch 64, RAdam, validation every epoch, checkpoints every
`save_period` = 10 epochs as published) once per variant, in order, each `name:epochs`:
fp32, bf16 (autocast), bf16+compile (autocast and torch.compile), each trained through CUDA
graphs; "+eager" variants launch every kernel from Python instead, "+host" variants assemble
batches on the host (copied into the graph's inputs) instead of holding the data on the GPU,
"+foreach" variants update RAdam through torch's foreach kernels instead of the compiled
one. A variant that would start after --budget seconds is skipped; one that fails is
reported and the next runs.
The table is printed after every variant and written to $OUT/gpu_training.json when $OUT is
set, so a run cut short still reports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from _msrvtt_bench import BenchData, bench_config, foreach_radam, make_dataset

MONITOR = "val_t2v_metrics_geometric_mean_R1-R5-R10"
VARIANTS = {"fp32": {}, "bf16": {"amp": "bf16"}, "bf16+compile": {"amp": "bf16", "compile": True},
            "fp32+compile": {"compile": True}, "fp32+host": {"resident_data": False},
            "bf16+host": {"amp": "bf16", "resident_data": False},
            "bf16+foreach": {"amp": "bf16"},
            "bf16+eager": {"amp": "bf16", "cuda_graphs": False},
            "fp32+eager": {"cuda_graphs": False}}


def _parse_variants(text: str) -> list[tuple[str, int]]:
    variants = []
    for item in text.split(","):
        name, _, epochs = item.partition(":")
        if name not in VARIANTS:
            raise SystemExit(f"unknown variant {name!r}; choose from {sorted(VARIANTS)}")
        variants.append((name, int(epochs or 100)))
    return variants


def _run_variant(name: str, epochs: int, data, config: dict, device: torch.device,
                 work: Path) -> dict:
    """Train one variant; wall time per epoch (first epoch apart), metric, peak memory."""
    from crosskd.config import parse_experiment
    from crosskd.process import detect
    from crosskd.train.assembly import build_training
    from crosskd.train.trainer import Trainer

    class TimedTrainer(Trainer):
        """Records when every epoch's training pass starts and ends, and the time spent
        writing checkpoints (benchmark only)."""

        starts: list[float] = []
        train_seconds: list[float] = []
        save_seconds: list[float] = []

        def _train_epoch(self, epoch: int, *args: Any) -> tuple[dict[str, float], int]:
            self.starts.append(time.perf_counter())
            result = super()._train_epoch(epoch, *args)
            if self.context.device.type == "cuda":
                torch.cuda.synchronize(self.context.device)
            self.train_seconds.append(time.perf_counter() - self.starts[-1])
            print(f"epoch {epoch}: training {self.train_seconds[-1]:.2f} s, "
                  f"{time.perf_counter() - self.starts[0]:.1f} s since the first", flush=True)
            return result

        def _save(self, *args, **kwargs) -> Path:
            start = time.perf_counter()
            path = super()._save(*args, **kwargs)
            self.save_seconds.append(time.perf_counter() - start)
            return path

    config = json.loads(json.dumps(config))
    config["trainer"].update({"epochs": epochs, **VARIANTS[name]})
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    experiment = parse_experiment(config)
    parts = build_training(experiment, detect(device, experiment.runtime.amp), data)
    trainer = TimedTrainer(parts, work / "runs" / name)
    trainer.starts, trainer.train_seconds, trainer.save_seconds = [], [], []
    setup = time.perf_counter() - start
    with foreach_radam(name.endswith("+foreach")):
        result = trainer.train()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    end = time.perf_counter()
    starts = trainer.starts + [end]
    later = (end - starts[1]) / (len(starts) - 2) if len(starts) > 2 else end - starts[0]
    last = result.history[-1]
    row = {"variant": name, "epochs": epochs, "setup_s": setup, "first_epoch_s": starts[1] - starts[0],
           "s_per_epoch": later, "total_s": end - start, "best_val": result.monitor_best,
           "best_epoch": result.best_epoch, "last_val_R1": last.get("val_t2v_metrics_R1"),
           "train_s_per_epoch": (sum(trainer.train_seconds[1:]) / (len(trainer.train_seconds) - 1)
                                 if len(trainer.train_seconds) > 1 else trainer.train_seconds[0]),
           "saves": len(trainer.save_seconds), "save_s": sum(trainer.save_seconds),
           "graphed": trainer.runtime.cuda_graphs,
           "resident": trainer.train_batches is not data.train,
           "peak_gpu_gib": (torch.cuda.max_memory_allocated(device) / 2**30
                            if device.type == "cuda" else None)}
    del trainer
    return row


def _table(rows: list[dict], header: str) -> str:
    lines = [header, "", "| variant | epochs | setup s | first epoch s | s/epoch (later) | "
             "training s/epoch (later) | checkpoints (s) | total s | "
             "best val geo-mean R1-R5-R10 (epoch) | last val R@1 | peak GPU GiB | "
             "resident data | CUDA graphs |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['variant']} | {row['epochs']} | failed: {row['error']} |")
            continue
        peak = "" if row["peak_gpu_gib"] is None else f"{row['peak_gpu_gib']:.1f}"
        lines.append(f"| {row['variant']} | {row['epochs']} | {row['setup_s']:.1f} | "
                     f"{row['first_epoch_s']:.2f} | {row['s_per_epoch']:.2f} | "
                     f"{row['train_s_per_epoch']:.2f} | {row['saves']} ({row['save_s']:.1f}) | "
                     f"{row['total_s']:.0f} | {row['best_val']:.2f} ({row['best_epoch']}) | "
                     f"{row['last_val_R1']:.2f} | {peak} | {row['resident']} | "
                     f"{row['graphed']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/crosskd-gpu"))
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--train", type=int, default=6513)
    parser.add_argument("--val", type=int, default=497)
    parser.add_argument("--captions", type=int, default=5)
    parser.add_argument("--variants", default="bf16:100,bf16+compile:5,bf16+host:3,bf16+eager:2",
                        help="comma-separated name:epochs, run in order "
                        f"(names: {', '.join(VARIANTS)})")
    parser.add_argument("--budget", type=float, default=420.0,
                        help="start no variant after this many seconds of the script")
    parser.add_argument("--save-period", type=int, default=10,
                        help="epochs between checkpoints (published: 10)")
    args = parser.parse_args()
    started = time.perf_counter()
    device = torch.device(args.device)
    variants = _parse_variants(args.variants)
    work = args.work.resolve()
    data_dir = work / "data" / "MSRVTT"
    generated = make_dataset(BenchData(args.train, args.val, 10, args.captions), data_dir)
    print(f"dataset ready ({generated:.0f} s to generate)", flush=True)
    from crosskd.config import data_spec
    from crosskd.data.retrieval import RetrievalData
    config = bench_config(data_dir, work / "runs")
    config["trainer"]["save_period"] = args.save_period
    config["data_loader"]["args"]["num_test_captions"] = args.captions  # no empty slots
    load_start = time.perf_counter()
    data = RetrievalData.load(data_spec(config), cache_dir=work / "cache")
    print(f"data loaded ({time.perf_counter() - load_start:.0f} s): {data.train.num_videos} "
          f"train, {data.eval.num_videos} val videos x {args.captions} captions", flush=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    header = (f"{name}, torch {torch.__version__}; synthetic MSRVTT {args.train} train / "
              f"{args.val} val videos x {args.captions} captions, CE+ cecap config "
              f"(262.7 M parameters), batch 64, save_period {args.save_period}")
    rows: list[dict] = []
    for variant, epochs in variants:
        if time.perf_counter() - started > args.budget:
            rows.append({"variant": variant, "epochs": epochs, "error": "skipped (budget)"})
            continue
        try:
            rows.append(_run_variant(variant, epochs, data, config, device, work))
        except Exception as err:  # report and go on: one call must give a table
            traceback.print_exc()
            rows.append({"variant": variant, "epochs": epochs,
                         "error": f"{type(err).__name__}: {str(err)[:200]}"})
        table = _table(rows, header)
        print("\n" + table + f"\n\nscript time so far {time.perf_counter() - started:.0f} s",
              flush=True)
        if os.environ.get("OUT"):
            Path(os.environ["OUT"], "gpu_training.json").write_text(
                json.dumps({"header": header, "rows": rows}, indent=1))
            Path(os.environ["OUT"], "gpu_training.md").write_text(table + "\n")


if __name__ == "__main__":
    sys.exit(main())
