"""Time one CE+ training step at the real MSRVTT size and compare it with the matmul roofline.

    python3 benchmarks/train_step.py \
        --config configs/msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json

`--config` is a training config (the published MSRVTT CE+ cecap one above: 7 experts,
gpt2-xl-finetune text, 262.7 M parameters). Inputs are random but have the real shapes:
text [64, 1, 37, 1600] and audio/speech token sequences, zero-padded after a random length,
with some experts missing. One step = forward (train mode), the config's loss (ranking +
caption KL), backward and an optimizer step, timed with the config's optimizer (torch's
RAdam, which build_optimizer maps to crosskd.optim.fast_radam.SinglePassRAdam) and with
torch.optim.RAdam. Reports medians of --steps steps after --warmup
steps (RAdam rectifies from step 6 on, so warm-up covers that), the FLOPs of forward +
backward (FlopCounterMode, oneDNN's products included), the fp32 2048^2 matmul GFLOP/s of
torch's matmul and of oneDNN's measured in the same run (the step's share is of the library
its linear layers use, `--cpu-matmul`, trainer.cpu_matmul), and the
optimizer step alone for each RAdam implementation, with their largest difference, and the
process's peak RSS (ru_maxrss) after each optimizer's training steps; SinglePassRAdam runs
first, so its figure is the peak of training with it.
Unless --default-allocator, glibc is told to keep freed memory (see _machine.py).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from typing import Callable

import torch
from torch.profiler import profile

from _machine import (cpu_description, flop_counter, load_average, matmul_gflops, matmul_libraries,
                      retain_freed_memory)
from crosskd.config import load_config, model_spec, objective_spec, optimizer_spec
from crosskd.losses import build_objective
from crosskd.models import CENet, build_model
from crosskd.optim.fast_radam import SinglePassRAdam
from crosskd.optim import build_optimizer
from crosskd.inference.linear_library import resolve_cpu_matmul, use_linear_library

#: tokens per expert sequence in the MSRVTT batches, and which fraction of videos lacks it.
TOKENS = {"audio": 29, "speech": 32, "text": 37}
MISSING = {"audio": 0.1, "speech": 0.3}


def _padded_tokens(batch: int, tokens: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """Random token sequences `[batch, tokens, dim]` zero-padded after a random length."""
    values = torch.randn(batch, tokens, dim, generator=generator)
    lengths = torch.randint(1, tokens + 1, (batch, 1, 1), generator=generator)
    return values * (torch.arange(tokens)[None, :, None] < lengths)


def random_batch(model: CENet, batch: int, seed: int) -> tuple[dict, dict, torch.Tensor]:
    """Experts, availability and one caption per video with the shapes the model expects."""
    generator = torch.Generator().manual_seed(seed)
    experts, ind = {}, {}
    for name in model.modalities:
        dim = model.dims.raw_input_dims[name]
        present = torch.rand(batch, generator=generator) >= MISSING.get(name, 0.0)
        features = (_padded_tokens(batch, TOKENS[name], dim, generator) if name in model.pooling
                    else torch.randn(batch, dim, generator=generator))
        experts[name] = features * present.reshape(-1, *[1] * (features.dim() - 1))
        ind[name] = present.float()
    text = _padded_tokens(batch, TOKENS["text"], model.dims.text_dim, generator)
    return experts, ind, text[:, None]


def step_flops(model: CENet, objective: torch.nn.Module, inputs: tuple) -> int:
    """FLOPs of one forward + loss + backward (matmuls, as FlopCounterMode counts them)."""
    counter = flop_counter()
    with counter:
        objective(model(*inputs))[0].backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def time_steps(model: CENet, objective: torch.nn.Module, optimizer: torch.optim.Optimizer,
               inputs: tuple, warmup: int, steps: int) -> dict[str, float]:
    """Median seconds of forward, backward, optimizer step and the whole training step."""
    times: dict[str, list[float]] = {"forward + loss": [], "backward": [], "optimizer": [],
                                     "step": []}
    for index in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss, _ = objective(model(*inputs))
        forward = time.perf_counter()
        loss.backward()
        backward = time.perf_counter()
        optimizer.step()
        end = time.perf_counter()
        if index >= warmup:
            for key, value in zip(times, (forward - start, backward - forward, end - backward,
                                          end - start)):
                times[key].append(value)
    return {key: statistics.median(values) for key, values in times.items()}


def print_profile(model: CENet, objective: torch.nn.Module, optimizer: torch.optim.Optimizer,
                  inputs: tuple, rows: int) -> None:
    """torch.profiler table of one training step: the operators that took the most time."""
    with profile(record_shapes=True) as prof:
        optimizer.zero_grad(set_to_none=True)
        objective(model(*inputs))[0].backward()
        optimizer.step()
    print(prof.key_averages(group_by_input_shape=True).table(
        sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=36,
        max_shapes_column_width=60))


def time_optimizer(optimizer: torch.optim.Optimizer, warmup: int, steps: int) -> float:
    """Median seconds of one step of `optimizer` on the gradients already in place."""
    durations = []
    for index in range(warmup + steps):
        start = time.perf_counter()
        optimizer.step()
        if index >= warmup:
            durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def peak_rss_gib() -> float:
    """The peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def optimizer_variants(args: dict) -> dict[str, Callable[[list], torch.optim.Optimizer]]:
    """torch's RAdam implementations on CPU (it has no fused one) and SinglePassRAdam."""
    return {
        "SinglePassRAdam (fused Adam kernel)": lambda params: SinglePassRAdam(params, **args),
        "RAdam foreach=True": lambda params: torch.optim.RAdam(params, foreach=True, **args),
        "RAdam foreach=False": lambda params: torch.optim.RAdam(params, foreach=False, **args),
    }


def largest_difference(variants: dict[str, Callable[[list], torch.optim.Optimizer]],
                       params: list[torch.nn.Parameter], steps: int = 10) -> float:
    """Largest |difference| between the variants' parameters after `steps` identical steps."""
    results = []
    for make in variants.values():
        copies = [p.detach().clone().requires_grad_() for p in params]
        for copy, original in zip(copies, params):
            copy.grad = original.grad.clone()
        optimizer = make(copies)
        for _ in range(steps):
            optimizer.step()
        results.append(copies)
    return max(float((a - b).detach().abs().max()) for other in results[1:]
               for a, b in zip(results[0], other))


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="training config (JSON)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=6)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpu-matmul", choices=("measured", "onednn", "torch"),
                        default=resolve_cpu_matmul("auto"),
                        help="library of the model's float32 linear layers (trainer.cpu_matmul; "
                             "default: this machine's choice)")
    parser.add_argument("--profile", type=int, default=0, metavar="ROWS",
                        help="also print a torch.profiler table of one step with ROWS operators")
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc returning freed memory to the kernel (the slow default)")
    return parser.parse_args()


def main() -> None:
    args = _parse_args()
    print(f"CPU: {cpu_description()}", flush=True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    retained = False if args.default_allocator else retain_freed_memory()
    config = load_config(args.config)
    model = build_model(model_spec(config)).train()
    use_linear_library(model, torch.device("cpu"), args.cpu_matmul)
    objective = build_objective(objective_spec(config))
    inputs = random_batch(model, args.batch, args.seed)
    num_params = sum(p.numel() for p in model.parameters())
    optimizer_args = dict(config["optimizer"].get("args") or {})
    makers = {"SinglePassRAdam": lambda: build_optimizer(optimizer_spec(config), model.parameters()),
              "torch RAdam": lambda: torch.optim.RAdam(model.parameters(), **optimizer_args)}

    libraries = matmul_libraries()
    gflops_before = [matmul_gflops(library=library) for library in libraries]
    load_before = load_average()
    flops = step_flops(model, objective, inputs)
    times = {}
    for name, make in makers.items():
        optimizer = make()
        times[name] = time_steps(model, objective, optimizer, inputs, args.warmup, args.steps)
        times[name]["peak RSS so far (GiB)"] = peak_rss_gib()
        if args.profile and name == "SinglePassRAdam":
            print_profile(model, objective, optimizer, inputs, args.profile)
        del optimizer  # frees its moments before the next optimizer allocates its own
    params = [p for p in model.parameters() if p.grad is not None]
    variants = optimizer_variants(optimizer_args)
    optimizer_times = {name: time_optimizer(make(params), args.warmup, args.steps)
                       for name, make in variants.items()}
    difference = largest_difference(variants, [p for p in params if p.numel() < 2**20])
    load_after = load_average()
    gflops = {library: (before + matmul_gflops(library=library)) / 2
              for library, before in zip(libraries, gflops_before)}
    used = args.cpu_matmul

    print(f"model {num_params / 1e6:.1f} M parameters, batch {args.batch}, {args.threads} "
          f"threads, retained freed memory: {retained}, load average {load_before:.2f} -> "
          f"{load_after:.2f}; medians of {args.steps} steps after {args.warmup}")
    print(f"{'seconds':<40}" + "".join(f"{name:>18}" for name in times))
    for key in next(iter(times.values())):
        print(f"{key:<40}" + "".join(f"{t[key]:>18.3f}" for t in times.values()))
    fast = times["SinglePassRAdam"]
    achieved = flops / 1e9 / (fast["forward + loss"] + fast["backward"])
    rows = [(f"optimizer alone: {name} (s)", f"{value:.3f}")
            for name, value in optimizer_times.items()]
    rows += [("optimizers' largest |param difference|", f"{difference:.1e}"),
             ("forward+backward GFLOP per step", f"{flops / 1e9:.1f}"),
             *((f"matmul 2048^2 fp32 GFLOP/s, {library}", f"{rate:.1f}")
               for library, rate in gflops.items()),
             ("the model's linear layers run on", used),
             ("forward+backward GFLOP/s", f"{achieved:.1f}"),
             (f"  % of {used} matmul throughput", f"{100 * achieved / gflops[used]:.0f}"),
             (f"whole step (SinglePassRAdam), % of {used} matmul",
              f"{100 * flops / 1e9 / fast['step'] / gflops[used]:.0f}")]
    for name, value in rows:
        print(f"{name:<48}{value:>10}")


if __name__ == "__main__":
    main()
