"""Which library `trainer.cpu_matmul` "auto" picks for each product of a model on this CPU, and why.

    python3 benchmarks/product_choice.py \
        --config configs/msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json [--batch 64] [--chunk 240]

Builds the config's model with a fresh measured plan (crosskd.inference.product_table, on a
table in a temporary folder, so nothing earlier is reused), runs one training step's forward
and backward at --batch rows and one evaluation forward at --chunk rows (the CPU caption
chunk of evaluation and indexing), and prints every product the plan measured: torch's and
oneDNN's time, the choice, how often the step or chunk runs it, and the time of all these
products as chosen against torch's and oneDNN's everywhere. Times are those of the measurement itself
(best of two alternating rounds of at least three runs each).
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from pathlib import Path

import torch

from _machine import cpu_description, load_average
from train_step import random_batch
from crosskd.config import load_config, model_spec, objective_spec
from crosskd.inference.product_table import MeasuredPlan, product_key
from crosskd.losses import build_objective
from crosskd.models import build_model
from crosskd.ops.cpu_matmul import use_product_plan
from crosskd.train.allocator import reuse_freed_memory


class _CountedPlan:
    """The measured plan, counting how often each product key is asked for (the products
    of one step or chunk: the seven text projections share one key)."""

    def __init__(self, plan: MeasuredPlan) -> None:
        self.plan = plan
        self.counts: collections.Counter = collections.Counter()

    def library(self, product: str, rows: int, weight: torch.Tensor) -> str:
        self.counts[product_key(product, rows, tuple(weight.shape), torch.get_num_threads())] += 1
        return self.plan.library(product, rows, weight)


def _print_table(title: str, plan: MeasuredPlan, keys: list[str],
                 counts: collections.Counter) -> None:
    print(f"\n{title}\n")
    print("| product | torch ms | oneDNN ms | chosen | calls |")
    print("|---|---|---|---|---|")
    totals = collections.Counter()
    for key in keys:
        seconds = plan.measurements[key]
        chosen = min(seconds, key=seconds.get)
        calls = counts.get(key, 1)
        print(f"| {key} | {1e3 * seconds['torch']:.2f} | {1e3 * seconds['onednn']:.2f} | "
              f"{chosen} | {calls} |")
        totals["torch"] += calls * seconds["torch"]
        totals["onednn"] += calls * seconds["onednn"]
        totals["chosen"] += calls * seconds[chosen]
    print(f"\nthese products, all on torch: {1e3 * totals['torch']:.0f} ms; all on oneDNN: "
          f"{1e3 * totals['onednn']:.0f} ms; as chosen: {1e3 * totals['chosen']:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="training config (JSON)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=240)
    args = parser.parse_args()
    print(f"CPU: {cpu_description()}; {torch.get_num_threads()} threads; "
          f"load average {load_average():.2f}", flush=True)
    reuse_freed_memory()
    config = load_config(args.config)
    torch.manual_seed(0)
    model = build_model(model_spec(config)).train()
    objective = build_objective(objective_spec(config))
    with tempfile.TemporaryDirectory() as folder:
        plan = MeasuredPlan(Path(folder) / "table.json")
        counted = _CountedPlan(plan)
        use_product_plan(model, counted)
        objective(model(*random_batch(model, args.batch, 0)))[0].backward()
        training, counted.counts = counted.counts, collections.Counter()
        with torch.inference_mode():
            model.eval()(*random_batch(model, args.chunk, 0))
        evaluation = counted.counts
    _print_table(f"Training step, batch {args.batch}", plan, sorted(training), training)
    _print_table(f"Evaluation forward, {args.chunk} rows", plan, sorted(evaluation), evaluation)
    print(f"\nload average at the end {load_average():.2f}")


if __name__ == "__main__":
    main()
