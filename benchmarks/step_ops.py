"""Count the operators of one CE+ training step that compute (each a kernel on a GPU).

    python3 benchmarks/step_ops.py \
        --config configs/msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json [--amp bf16]

Inside a CUDA graph a step costs at least a few microseconds per kernel, so on a GPU the
number of small kernels, not FLOPs, bounds a CE+ step outside its big products. This counts
them without a GPU: every ATen operator that forward, loss and backward dispatch at the
published model size (inputs as in train_step.py), apart from views and allocations, which
launch no kernel. The optimizer step is not included (graphed steps run it as pieces of a
compiled kernel, see crosskd.optim.fast_radam). Prints totals and the most frequent
operators; `--amp bf16` counts under bfloat16 autocast, whose casts are kernels too.
"""

from __future__ import annotations

import argparse
import collections
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from crosskd.config import load_config, model_spec, objective_spec
from crosskd.losses import build_objective
from crosskd.models import build_model
from train_step import random_batch

#: operators that only make views or allocate: no kernel runs for them.
NO_KERNEL = frozenset({
    "alias", "as_strided", "detach", "empty", "empty_strided", "expand", "permute", "reshape",
    "select", "slice", "split", "squeeze", "squeeze_", "t", "transpose", "unbind", "unsqueeze",
    "view", "_unsafe_view", "_reshape_alias",
})


class OperatorCounter(TorchDispatchMode):
    """Counts the computing operators dispatched while active, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        name = func.overloadpacket.__name__
        if name not in NO_KERNEL:
            self.counts[name] += 1
        return func(*args, **(kwargs or {}))


def count_step(config_path: str, amp: str | None,
               batch: int) -> tuple[int, int, collections.Counter]:
    """Operators of forward + loss and of backward, and all of them by name."""
    config = load_config(config_path)
    torch.manual_seed(0)
    model = build_model(model_spec(config)).train()
    objective = build_objective(objective_spec(config))
    inputs = random_batch(model, batch, 0)
    counter = OperatorCounter()
    with counter, torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp == "bf16"):
        loss = objective(model(*inputs))[0]
    forward = sum(counter.counts.values())
    with counter:
        loss.backward()
    return forward, sum(counter.counts.values()) - forward, counter.counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="training config (JSON)")
    parser.add_argument("--amp", choices=("bf16",), default=None)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--top", type=int, default=15, help="operators listed by count")
    args = parser.parse_args()
    forward, backward, counts = count_step(args.config, args.amp, args.batch)
    print(f"computing operators per training step ({args.amp or 'fp32'}, batch {args.batch}): "
          f"forward + loss {forward}, backward {backward}, total {forward + backward}")
    for name, count in counts.most_common(args.top):
        print(f"{count:6d}  {name}")


if __name__ == "__main__":
    main()
