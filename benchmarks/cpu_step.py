"""The CPU training step as train.py runs it, through each CPU matmul library, in one run.

    python3 benchmarks/cpu_step.py \
        --config configs/msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json [--profile 30]

Builds the config's model (262.7 M parameters for the published MSRVTT CE+ cecap config),
loss and optimizer, applies the process settings training applies on the CPU
(`Runtime.apply_process_settings`: threads, glibc's reuse of freed memory) and installs the
fast paths as the CPU runner does (crosskd.train.runners.install_fast_paths: the linear-layer
library, the optimizer stepped inside backward; with RAdam and oneDNN, the text projections'
weight gradients go to the update a block of rows at a time). Inputs are random with the real shapes
(benchmarks/train_step.py). For each library of `--libraries` (default: torch's matmul, then
oneDNN where torch has it, then "measured": each product on the library measured faster for
its shape, `trainer.cpu_matmul` "auto", crosskd.inference.product_table) a fresh model is timed over --steps steady steps after --warmup
(RAdam rectifies from step 6); the table gives the median step, its FLOPs (FlopCounterMode,
oneDNN's products included) and their rate against the 2048^2 fp32 matmul rate of each
library measured in the same run, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import time

import torch
from torch.profiler import profile

from _machine import cpu_description, flop_counter, load_average, matmul_gflops, matmul_libraries
from train_step import random_batch
from crosskd.config import load_config, model_spec, objective_spec, optimizer_spec
from crosskd.inference.precision import Precision
from crosskd.losses import build_objective
from crosskd.models import build_model
from crosskd.optim import build_optimizer
from crosskd.train.runners import install_fast_paths
from crosskd.train.runtime import Runtime, cpu_threads_for

CPU = torch.device("cpu")


def _stepper(config: dict, seed: int, batch: int, library: str, amp: str | None = None):
    """A fresh model, loss and optimizer wired as the CPU runner wires them, with `library`'s
    linear layers (under `amp`'s autocast, with its kept low-precision weights); returns the
    step function."""
    torch.manual_seed(seed)
    model = build_model(model_spec(config)).train()
    objective = build_objective(objective_spec(config))
    optimizer = build_optimizer(optimizer_spec(config), model.parameters())
    runtime = Runtime(CPU, precision=Precision.from_amp(amp), optimizer_in_backward=True,
                      cpu_matmul=library, cpu_threads=cpu_threads_for(model, CPU))
    runtime.apply_process_settings()
    install_fast_paths(runtime, model, optimizer)
    inputs = random_batch(model, batch, seed)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with runtime.precision.autocast(CPU):
            loss = objective(model(*inputs))[0]
        loss.backward()
    return step


def _counted_step(step) -> int:
    """FLOPs of one training step (the products; the optimizer's update is not counted)."""
    counter = flop_counter()
    with counter:
        step()
    return counter.get_total_flops()


def _time(step, warmup: int, steps: int) -> list[float]:
    durations = []
    for _ in range(warmup + steps):
        start = time.perf_counter()
        step()
        durations.append(time.perf_counter() - start)
    return durations[warmup:]


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="training config (JSON)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    libraries = matmul_libraries() + (("measured",) if len(matmul_libraries()) > 1 else ())
    parser.add_argument("--libraries", nargs="+", default=list(libraries), choices=libraries)
    parser.add_argument("--amp", choices=("bf16",), default=None,
                        help="also time each library's step under bfloat16 autocast")
    parser.add_argument("--profile", type=int, default=0, metavar="ROWS",
                        help="also print a torch.profiler table of one step of the last library")
    return parser.parse_args()


def main() -> None:
    args = _parse_args()
    print(f"CPU: {cpu_description()}", flush=True)
    config = load_config(args.config)
    rates_before = {lib: matmul_gflops(library=lib) for lib in matmul_libraries()}
    load_before = load_average()
    results = {}
    runs = [(library, None) for library in args.libraries]
    runs += [(library, args.amp) for library in args.libraries if args.amp]
    for library, amp in runs:
        step = _stepper(config, args.seed, args.batch, library, amp)
        step()  # a measured plan measures its products here, outside the FLOP count
        flops = _counted_step(step)
        durations = _time(step, args.warmup, args.steps)
        name = library if amp is None else f"{library}, {amp} autocast"
        results[name] = (statistics.median(durations), min(durations), max(durations), flops)
        if args.profile and (library, amp) == runs[-1]:
            with profile(record_shapes=True) as prof:
                step()
            print(prof.key_averages(group_by_input_shape=True).table(
                sort_by="self_cpu_time_total", row_limit=args.profile,
                max_name_column_width=36, max_shapes_column_width=60))
        del step
        gc.collect()
    rates = {lib: (before + matmul_gflops(library=lib)) / 2 for lib, before in rates_before.items()}
    print(f"{torch.get_num_threads()} threads, load average {load_before:.2f} -> "
          f"{load_average():.2f}; fp32 2048^2 matmul GFLOP/s: "
          + ", ".join(f"{lib} {rate:.1f}" for lib, rate in rates.items())
          + f"; median of {args.steps} steps after {args.warmup}\n")
    print("| linear layers on | step (median, min-max) | GFLOP | GFLOP/s | "
          + " | ".join(f"% of {lib} matmul" for lib in rates) + " |")
    print("|---|---|---|---|" + "---|" * len(rates))
    for library, (median, low, high, flops) in results.items():
        achieved = flops / 1e9 / median
        print(f"| {library} | {median:.3f} s ({low:.3f}-{high:.3f}) | {flops / 1e9:.1f} | "
              f"{achieved:.0f} | " + " | ".join(f"{100 * achieved / rate:.0f}"
                                               for rate in rates.values()) + " |")
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
