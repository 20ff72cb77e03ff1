"""What one torchrun training step sends between processes, at the real MSRVTT size.

    python3 benchmarks/distributed_traffic.py \
        --config configs/msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json

Builds the config's model (262.7 M parameters for the published CE+ configs), runs one
training forward on a random global batch of the config's size through the distributed
forward (crosskd.train.distributed.GatheredForward, batch norm synchronised) with a
recording stand-in for the process group, and prints the bytes of every all-gather by kind
(embeddings, batch-norm inputs) and of the gradient all-reduce (every parameter, float32).
The teachers of a TeachText config (distil_loss) are counted from its teacher list: every
teacher gives each video one embedding per modality and one for its caption. A ring
collective moves (N-1)/N of an all-gather's output and 2(N-1)/N of an all-reduce's size
through every process's link; the gathers' backward all-reduces the gathered gradients.
"""

from __future__ import annotations

import argparse
import contextlib
from collections import Counter
from typing import Callable, Iterator

import torch

from crosskd.config import load_config, model_spec
from crosskd.models import build_model
from crosskd.process import TorchrunJob
from crosskd.train.distributed import GatheredForward, Shards, synchronise_batch_norms
from train_step import random_batch

#: teacher embeddings' width in the published TeachText files.
TEACHER_DIM = 768


class RecordingShards(Shards):
    """One process standing in for the job: gathers return their input, sizes are counted."""

    def __init__(self) -> None:
        super().__init__(TorchrunJob(rank=0, world_size=1, local_rank=0))
        self.kind = "embeddings"
        self.bytes: Counter[str] = Counter()
        self.with_grad: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def begin(self, local_rows: int) -> None:
        self.sizes = (local_rows,)

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        size = rows.numel() * rows.element_size()
        self.bytes[self.kind] += size
        self.calls[self.kind] += 1
        if rows.requires_grad:
            self.with_grad[self.kind] += size
        return rows

    @contextlib.contextmanager
    def counting_as(self, kind: str) -> Iterator[None]:
        previous, self.kind = self.kind, kind
        try:
            yield
        finally:
            self.kind = previous

    def across_ranks(self, function: Callable[[torch.Tensor], torch.Tensor],
                     rows: torch.Tensor) -> torch.Tensor:
        with self.counting_as("batch-norm inputs"):
            return super().across_ranks(function, rows)


def teacher_bytes(config: dict, batch: int, modalities: int) -> int:
    """Float32 bytes of a global batch's teacher embeddings (video and caption)."""
    teachers = len(config["distil_params"]["teachers"])
    return 2 * teachers * modalities * TEACHER_DIM * batch * 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--batch", type=int, help="global batch (default: the config's)")
    args = parser.parse_args()
    config = load_config(args.config)
    batch = args.batch or config["data_loader"]["args"]["batch_size"]
    model = build_model(model_spec(config)).train()
    shards = RecordingShards()
    synchronise_batch_norms(model, shards)
    GatheredForward(model, shards)(*random_batch(model, batch, seed=0))
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    if config.get("distil_loss"):
        shards.bytes["teachers"] = teacher_bytes(config, batch, len(model.modalities))
        shards.calls["teachers"] = 2 * len(config["distil_params"]["teachers"]) * len(
            model.modalities)
    print(f"global batch {batch}, {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M "
          "parameters")
    print("| traffic per step | calls | gathered bytes | of them with gradients |")
    print("|---|---|---|---|")
    for kind, size in shards.bytes.items():
        print(f"| all-gather: {kind} | {shards.calls[kind]} | {size / 2**20:.2f} MiB | "
              f"{shards.with_grad[kind] / 2**20:.2f} MiB |")
    print(f"| all-reduce: gradients (DDP) | | {parameters / 2**20:.1f} MiB | |")


if __name__ == "__main__":
    main()
