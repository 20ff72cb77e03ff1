"""Where a GPU training step and a validation pass spend their time (for optimisation work).

    python3 benchmarks/profile_gpu_step.py            # on the GPU machine; writes $OUT/profile.txt

Trains the published CE+ cecap config (bfloat16, resident data) on a synthetic MSRVTT with
the real widths (1,024 training videos, MSRVTT's 497 validation videos x 5 captions) and
reports: the wall time of a step through the CUDA graph, of the graph replay alone (also with
RAdam's large tensors updated by torch's foreach kernels instead of compiled ones), of a
step in a training epoch, and of an eager step; the kernels per replay and their summed GPU
time; torch.profiler's tables of the kernels of graph replays and of eager steps; the time
of a validation pass and its profile; and the time a resumable checkpoint holds up training
(a snapshot, written in the background) and takes to be written.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from _msrvtt_bench import BenchData, bench_config, foreach_radam, make_dataset

STEPS = 30


def _timed(function, repeat: int) -> float:
    """Mean seconds per call, synchronised with the GPU."""
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        function()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeat


def _replay_with_foreach_radam(config: dict, work: Path, device: torch.device, data) -> float:
    """Seconds per replay of a graph whose RAdam runs no compiled kernel (for comparison)."""
    with foreach_radam():
        trainer = _trainer(config, work / "runs" / "foreach", device, data)
        trainer._create_run_dir()
        trainer._train_epoch(1)
    return _timed(next(iter(trainer.runner.graphed.captured.values())).graph.replay, STEPS)


def _trainer(config: dict, run_dir: Path, device: torch.device, data):
    """The trainer of `config` on `device`, assembled as `crosskd train` assembles one."""
    from crosskd.config import parse_experiment
    from crosskd.process import detect
    from crosskd.train.assembly import build_training
    from crosskd.train.trainer import Trainer
    experiment = parse_experiment(config)
    context = detect(device, experiment.runtime.amp)
    return Trainer(build_training(experiment, context, data), run_dir)


def main() -> None:
    from crosskd.config import data_spec
    from crosskd.data.retrieval import RetrievalData
    from crosskd.train.evaluate import evaluate
    from crosskd.data.sampling import epoch_batches
    work = Path("/tmp/crosskd-profile")
    make_dataset(BenchData(1024, 497, 10, 5), work / "data" / "MSRVTT")
    config = bench_config(work / "data" / "MSRVTT", work / "runs")
    config["trainer"].update({"amp": "bf16", "epochs": 1})
    config["data_loader"]["args"]["num_test_captions"] = 5
    data = RetrievalData.load(data_spec(config), cache_dir=work / "cache")
    device = torch.device("cuda")
    report: list[str] = []

    def say(line: str) -> None:  # printed at once, so a run cut short still reports
        report.append(line)
        print(line, flush=True)

    trainer = _trainer(config, work / "runs" / "graphed", device, data)
    trainer._create_run_dir()
    trainer._train_epoch(1)  # warm-up and capture
    batches = list(epoch_batches(trainer.train_batches, 64, trainer.data_rng))[:STEPS]
    full = [b for b in batches if b.text.shape[0] == 64]
    steps = iter(full * 2)
    say(f"graphed step, batch included: {1e3 * _timed(lambda: trainer.runner.graphed(next(steps))['loss'].item(), len(full)):.2f} ms")
    graph = next(iter(trainer.runner.graphed.captured.values())).graph
    replays = {"compiled": _timed(graph.replay, STEPS),
               "foreach": _replay_with_foreach_radam(config, work, device, data)}
    say(f"graph replay alone: {1e3 * replays['compiled']:.2f} ms")
    say(f"graph replay, every tensor updated through torch's foreach kernels: "
                  f"{1e3 * replays['foreach']:.2f} ms")
    if os.environ.get("OUT"):  # benchmarks/gpu_check.sh trains with the faster
        Path(os.environ["OUT"], "replay_seconds.json").write_text(json.dumps(replays))
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            graph.replay()
        torch.cuda.synchronize()
    kernels = prof.key_averages()
    say(f"per replay: {sum(k.count for k in kernels) / 5:.0f} kernels and copies, "
                  f"{sum(k.self_device_time_total for k in kernels) / 5e3:.2f} ms of GPU time")
    say("graph replays x5, kernels by GPU time:")
    say(prof.key_averages().table(sort_by="cuda_time_total", row_limit=30))
    start = time.perf_counter()
    trainer._train_epoch(2)
    torch.cuda.synchronize()
    say(f"training epoch, per step (loss read one step late): "
                  f"{1e3 * (time.perf_counter() - start) / len(batches):.2f} ms")
    batch_prep = epoch_batches(trainer.train_batches, 64, trainer.data_rng)
    say(f"batch assembly alone: {1e3 * _timed(lambda: next(batch_prep), 15):.2f} ms")
    start = time.perf_counter()
    evaluate(trainer.model, trainer.eval_batches, device, precision=trainer.runtime.precision)
    say(f"validation (first): {time.perf_counter() - start:.2f} s")
    say(f"validation: {_timed(lambda: evaluate(trainer.model, trainer.eval_batches, device, precision=trainer.runtime.precision), 3):.2f} s")
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        evaluate(trainer.model, trainer.eval_batches, device, precision=trainer.runtime.precision)
    say("validation profile (CPU time):")
    say(prof.key_averages().table(sort_by="cpu_time_total", row_limit=25))
    start = time.perf_counter()
    trainer._save("checkpoint_last.pth", 1)
    handed_over = time.perf_counter() - start
    trainer.writer.wait()
    say(f"resumable checkpoint: {handed_over:.2f} s in the training loop "
                  f"(snapshot), written after {time.perf_counter() - start:.2f} s")
    eager_config = {**config, "trainer": {**config["trainer"], "cuda_graphs": False}}
    eager = _trainer(eager_config, work / "runs" / "eager", device, data)
    eager.model.train()
    for batch in full[:3]:
        eager._eager_step(batch)
    steps = iter(full * 2)
    say(f"eager step: {1e3 * _timed(lambda: eager._eager_step(next(steps)), len(full)):.2f} ms")
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for batch in full[:5]:
            eager._eager_step(batch)
        torch.cuda.synchronize()
    say("eager steps x5, by GPU time:")
    say(prof.key_averages().table(sort_by="cuda_time_total", row_limit=40))
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "profile.txt").write_text("\n".join(report) + "\n")


if __name__ == "__main__":
    sys.exit(main())
