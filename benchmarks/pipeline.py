"""The whole pipeline at the real MSRVTT model size on this machine, against the original.

    python3 benchmarks/pipeline.py                       # 1000/250/250 videos x 20 captions
    python3 benchmarks/pipeline.py --work /tmp/b --train 60 --val 20 --test 20 --captions 4

Writes a seeded synthetic MSRVTT (published widths: scene 2208, senet154 2048, resnext101
2048, two r2p1d 512, audio 128-d / speech 300-d tokens, gpt2-xl-finetune 1600-d caption tokens
of 6-18 tokens, 20 captions per video) under --work, then measures, each in its own process:

* loading the data with a cold cache (packing) and again with the cache filled;
* two training epochs (batches of 64; the first includes RAdam's five unrectified steps)
  and one validation (val videos x 20 captions), timed inside one process, plus the FLOPs
  of one training step and the matmul GFLOP/s;
* `test.py` (full-test protocol) and `train.py` (one epoch, validation, final test) as whole
  processes: wall time and peak RSS (the child's own, from wait4).

The config is the published msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json (CE+ with
caption distillation, 262.7 M parameters). This script measures crosskd alone; the original
beside it, on the same data and config in one run, is benchmarks/vs_original.py.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from _machine import cpu_description, flop_counter, load_average, matmul_gflops
from crosskd.inference.linear_library import resolve_cpu_matmul
from _msrvtt_bench import (BenchData, bench_config, make_dataset, run_process, uptime_load,
                           write_config)

REPO = Path(__file__).resolve().parents[1]


def _child_load(config_path: Path, cache: Path) -> dict:
    """Load both splits of the config (packing into `cache` when it is cold)."""
    from crosskd.config import data_spec, load_config
    from crosskd.data.retrieval import RetrievalData
    config = load_config(config_path)
    start = time.perf_counter()
    data = RetrievalData.load(data_spec(config), cache_dir=cache)
    return {"seconds": time.perf_counter() - start, "train_videos": data.train.num_videos}


def _step_flops(trainer, batch) -> float:
    """FLOPs of one forward + backward training step (FlopCounterMode's matmul count; with
    the optimizer stepping inside backward, this is also one update of the weights)."""
    import torch
    counter = flop_counter()
    with counter:
        total, _ = trainer.task(batch)
        total.backward()
    trainer.optimizer.zero_grad(set_to_none=True)
    del total
    torch.manual_seed(0)
    return float(counter.get_total_flops())


def _child_phases(config_path: Path, cache: Path, run_dir: Path) -> dict:
    """One training epoch and one validation, timed inside one process."""
    import numpy as np
    import torch
    from crosskd.config import load_config, parse_experiment
    from crosskd.data.retrieval import RetrievalData
    from crosskd.process import detect
    from crosskd.train.assembly import build_training
    from crosskd.train.evaluate import evaluate
    from crosskd.train.trainer import Trainer
    experiment = parse_experiment(load_config(config_path))
    data = RetrievalData.load(experiment.data, cache_dir=cache)
    context = detect(torch.device("cpu"), experiment.runtime.amp)
    trainer = Trainer(build_training(experiment, context, data), run_dir)
    batch_size = trainer.settings.batch_size
    first = trainer.sampler.draw(np.arange(min(batch_size, data.train.num_videos)),
                                 np.random.default_rng(0))
    flops = _step_flops(trainer, data.train.batch(first))
    batches = len(trainer.sampler)
    epochs = []
    for epoch in (1, 2):  # the first includes RAdam's unrectified steps and first touches
        start = time.perf_counter()
        trainer._train_epoch(epoch)  # the trainer's own loop (benchmark-only use of a private)
        epochs.append(time.perf_counter() - start)
    start = time.perf_counter()
    metrics = evaluate(trainer.model, data.eval, torch.device("cpu"))
    validation = time.perf_counter() - start
    return {"epoch": epochs[0], "batch": epochs[0] / batches, "batch_2": epochs[1] / batches,
            "batches": batches,
            "validation": validation, "flops": flops, "threads": torch.get_num_threads(),
            "queries": metrics["protocol"]["num_queries"],
            "val_videos": metrics["protocol"]["num_videos"]}


def _child(args: argparse.Namespace) -> None:
    if args.child == "load":
        result = _child_load(args.config, args.cache)
    else:
        result = _child_phases(args.config, args.cache, args.run_dir)
    print("RESULT " + json.dumps(result))


def _result(stdout: str) -> dict:
    line = [row for row in stdout.splitlines() if row.startswith("RESULT ")][-1]
    return json.loads(line.removeprefix("RESULT "))


def _self(mode: str, config: Path, cache: Path, run_dir: Path | None = None) -> list[str]:
    command = [sys.executable, __file__, "--child", mode, "--config", str(config),
               "--cache", str(cache)]
    return command + (["--run-dir", str(run_dir)] if run_dir else [])


def _row(name: str, value: float, unit: str) -> str:
    return f"| {name} | {value:.2f} {unit} | not measured in this run |"


def main() -> None:
    print(f"CPU: {cpu_description()}", flush=True)
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/crosskd-bench"),
                        help="folder for the data, cache and runs (outside the repository)")
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--val", type=int, default=250)
    parser.add_argument("--test", type=int, default=250)
    parser.add_argument("--captions", type=int, default=20)
    parser.add_argument("--child", choices=("load", "phases"), help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    work = args.work.resolve()
    spec = BenchData(args.train, args.val, args.test, args.captions)
    data_dir = work / "data" / "MSRVTT"
    generated = make_dataset(spec, data_dir)
    if generated:
        print(f"generated the dataset in {generated:.0f} s", flush=True)
    config = bench_config(data_dir, work / "runs")
    config_path = write_config(config, work / "pipeline-cecap.json")
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(work / "runs", ignore_errors=True)
    loads = {}
    for step in ("first", "cached"):
        loads[step] = run_process(_self("load", config_path, cache))
        print(f"load ({step}): {_result(loads[step].stdout)['seconds']:.1f} s", flush=True)
    phases_run = run_process(_self("phases", config_path, cache, work / "runs" / "phases"))
    phases = _result(phases_run.stdout)
    print(f"phases: {phases}", flush=True)
    load_at_train = uptime_load()
    train = run_process([sys.executable, str(REPO / "train.py"), "--config", str(config_path),
                         "--device", "cpu", "--cache_dir", str(cache)])
    print(f"train.py: {train.seconds:.0f} s, peak RSS {train.peak_rss_gib:.2f} GiB", flush=True)
    (run_dir,) = sorted((work / "runs" / config_path.stem).iterdir())
    test = run_process([sys.executable, str(REPO / "test.py"), "--config", str(config_path),
                        "--resume", str(run_dir / "model_best.pth"),
                        "--eval_from_training_config", "--device", "cpu",
                        "--cache_dir", str(cache)])
    print(f"test.py: {test.seconds:.1f} s, peak RSS {test.peak_rss_gib:.2f} GiB", flush=True)
    gflops = matmul_gflops(library=resolve_cpu_matmul("auto"))
    achieved = phases["flops"] / phases["batch_2"] / 1e9
    print(f"\nsynthetic MSRVTT {spec.train}/{spec.val}/{spec.test} videos x {spec.captions} "
          f"captions, CE+ cecap config (262.7 M parameters), batch 64, "
          f"{phases['threads']} torch thread(s); load average {load_average():.2f} "
          f"(at train.py start {load_at_train})\n")
    print("| step | crosskd | original (benchmarks/vs_original.py --original PATH) |\n"
          "|---|---|---|")
    loaded = {step: _result(run.stdout)["seconds"] for step, run in loads.items()}
    rows = [("loading the data, first run (packing)", loaded["first"], "s"),
            ("loading the data, later runs (cached)", loaded["cached"], "s"),
            (f"one training epoch ({phases['batches']} batches)", phases["epoch"], "s"),
            ("training, per batch of 64 (first epoch)", phases["batch"], "s"),
            ("training, per batch of 64 (second epoch)", phases["batch_2"], "s"),
            (f"validation, {phases['val_videos']} videos, {phases['queries']} queries",
             phases["validation"], "s"),
            ("test.py, whole process", test.seconds, "s"),
            ("test.py, peak RSS", test.peak_rss_gib, "GiB"),
            ("train.py one epoch, whole process", train.seconds, "s"),
            ("train.py, peak RSS", train.peak_rss_gib, "GiB")]
    for row in rows:
        print(_row(*row))
    print(f"\ntraining step: {phases['flops'] / 1e9:.0f} GFLOP (forward + backward), "
          f"{achieved:.1f} GFLOP/s achieved = {100 * achieved / gflops:.0f}% of this machine's "
          f"fp32 matmul rate ({gflops:.1f} GFLOP/s, 2048^2 matmul through "
          f"{resolve_cpu_matmul('auto')}, the library of crosskd's linear layers here)")


if __name__ == "__main__":
    main()
