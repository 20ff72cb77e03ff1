"""The whole training step (forward, loss, backward, optimizer) as a replayed CUDA graph.

An eager CE+ step launches over a thousand kernels from Python, most of them tiny, so on a
GPU it is bound by launch latency rather than arithmetic (docs/PERFORMANCE.md). A CUDA
graph records the launches once and replays them with one call. What capture needs, and how the step provides it:

- fixed addresses: each batch (on the host or already on the GPU) is copied into the
  graph's own input tensors; batches have fixed shapes (tokens are padded to max_tokens);
- no host synchronisation: the loss terms stay on the device and are read after the replay;
- gradients in fixed tensors: the step sets `.grad` to None, so backward allocates each
  gradient in the graph's private memory pool (at the same address in every replay) and
  hands it over without a kernel, where zeroing shared gradients and accumulating into them
  costs two passes over every gradient;
- an optimizer whose step counts and learning rate live on the device (`prepare_optimizer`);
  a scheduler then changes the rate by filling that tensor in place;
- autocast without its weight cache (the bfloat16 copies are made inside the graph).

The step itself is the one every runner uses (crosskd.train.step.TrainingStep).

Each new batch shape (the full batches, then the last, smaller one) first trains
`WARMUP_STEPS` batches eagerly on a side stream, as CUDA's capture rules ask, and is then
captured; the captured step is replayed at once, so every batch is trained on exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Hashable

import torch

from crosskd.data.batch import Batch
from crosskd.train.step import TrainingStep
from crosskd.tree import structure

#: eager steps of a batch shape before it is captured.
WARMUP_STEPS = 2
def prepare_optimizer(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Make the optimizer capturable: learning rates and step counts as device tensors.

    Called after construction and again after a checkpoint is loaded (checkpoints keep
    plain numbers, see `portable_state`)."""
    for group in optimizer.param_groups:
        group["capturable"] = True
        group["lr"] = torch.tensor(float(group["lr"]), device=device)
        for param in group["params"]:
            state = optimizer.state.get(param)
            if state and "step" in state:
                state["step"] = state["step"].to(device)


def portable_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's state dict with plain-number learning rates and `capturable` off, so
    that a checkpoint of a graphed run resumes anywhere, on the CPU too."""
    state = optimizer.state_dict()
    state["param_groups"] = [
        {**{key: float(value) if key in ("lr", "initial_lr") else value
            for key, value in group.items()}, "capturable": False}
        for group in state["param_groups"]]
    return state


@dataclass
class _Captured:
    """One captured step: the graph, the tensors it reads each batch from, and its outputs."""

    graph: torch.cuda.CUDAGraph
    inputs: list[torch.Tensor]
    outputs: dict[str, torch.Tensor]


class GraphedTrainStep:
    """Trains on one batch per call through CUDA graphs (one per batch shape)."""

    def __init__(self, step: TrainingStep, device: torch.device,
                 before_capture: Callable[[], Any] = lambda: None) -> None:
        """`step` must autocast without its weight cache; `before_capture` runs before each
        capture: no other thread may use the GPU during one (a background checkpoint's
        device-to-host copies invalidate it)."""
        self.step = step
        self.device = device
        self.before_capture = before_capture
        self.captured: dict[Hashable, _Captured] = {}
        self.eager_steps: dict[Hashable, int] = {}

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Train on `batch` (on the host or the GPU); returns the loss and its terms (device
        scalars, overwritten by the next call)."""
        key = structure(batch)
        captured = self.captured.get(key)
        if captured is not None:
            for static, new in zip(captured.inputs, batch.tensors(), strict=True):
                static.copy_(new, non_blocking=True)
            captured.graph.replay()
            return captured.outputs
        if self.eager_steps.get(key, 0) < WARMUP_STEPS:
            self.eager_steps[key] = self.eager_steps.get(key, 0) + 1
            return _on_side_stream(self.step, batch.to(self.device))
        static = batch.map_tensors(lambda tensor: tensor.to(self.device, copy=True))
        self.before_capture()
        captured = self.captured[key] = _capture(self.step, static)
        captured.graph.replay()
        return captured.outputs


def _on_side_stream(step: Callable[[Batch], dict[str, torch.Tensor]],
                    batch: Batch) -> dict[str, torch.Tensor]:
    """Run `step` eagerly on a side stream that the current stream then waits for."""
    current = torch.cuda.current_stream()
    side = torch.cuda.Stream()
    side.wait_stream(current)
    with torch.cuda.stream(side):
        outputs = step(batch)
    current.wait_stream(side)
    return outputs


def _capture(step: Callable[[Batch], dict[str, torch.Tensor]], batch: Batch) -> _Captured:
    """Record `step` on `batch`, the graph's own inputs (nothing runs until it is replayed)."""
    graph = torch.cuda.CUDAGraph()
    torch.cuda.synchronize()
    with torch.cuda.graph(graph):
        outputs = step(batch)
    return _Captured(graph, batch.tensors(), outputs)
