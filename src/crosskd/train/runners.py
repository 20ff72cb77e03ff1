"""How a run executes its training steps: eagerly, or replayed as CUDA graphs.

Both runners take the same `TrainingStep` and hand back each step's loss values on the
host, tagged with the batch they belong to: the eager runner at once (after checking the
loss before any update), the graphed runner one step late, so the host prepares the next
batch while the GPU trains (crosskd.train.deferred_values).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from crosskd.data.batch import Batch
from crosskd.train.backward_step import GradientBuffers, step_during_backward
from crosskd.train.deferred_values import DeferredValues
from crosskd.train.graphed_step import GraphedTrainStep, prepare_optimizer
from crosskd.train.runtime import Runtime
from crosskd.train.step import TrainingStep
from crosskd.train.task import RetrievalTask
from crosskd.train.weight_gradients import keep_low_precision_copies, stream_weight_gradients

#: one step's values on the host: the tag it was pushed with, and loss name -> value.
TaggedValues = tuple[int, dict[str, float]]


class StepRunner:
    """Trains on batches; returns finished steps' values, possibly some steps late."""

    def __init__(self, step: TrainingStep, device: torch.device,
                 buffers: GradientBuffers | None = None) -> None:
        self.step = step
        self.device = device
        #: the consumed gradients kept for reuse when the optimizer steps inside backward
        self.buffers = buffers

    def __call__(self, tag: int, batch: Batch) -> TaggedValues | None:
        """Train on `batch`; the values of the steps finished since the last call."""
        raise NotImplementedError

    def flush(self) -> TaggedValues | None:
        """The values of a step still in flight, waiting for them (None if none is)."""
        return None

    def prepare_optimizer(self) -> None:
        """Adapt the optimizer to this runner (after building it, and after loading state)."""

    def end_epoch(self) -> None:
        """Free what only training needs (gradients, recycled buffers) before validation."""
        self.step.optimizer.zero_grad(set_to_none=True)
        if self.buffers is not None:
            self.buffers.clear()


class EagerRunner(StepRunner):
    """One step per call from Python; a non-finite loss is reported before any update."""

    def __call__(self, tag: int, batch: Batch) -> TaggedValues:
        """Train on `batch`; its values, read on the host."""
        values = self.step(batch.to(self.device), skip_non_finite=True)
        return tag, host_values(values)


class GraphedRunner(StepRunner):
    """Steps captured as CUDA graphs and replayed; values are read one step late."""

    def __init__(self, step: TrainingStep, device: torch.device,
                 before_capture: Callable[[], Any]) -> None:
        super().__init__(step, device)
        self.graphed = GraphedTrainStep(step, device, before_capture)
        self.in_flight = DeferredValues()
        self.prepare_optimizer()

    def __call__(self, tag: int, batch: Batch) -> TaggedValues | None:
        """Copy `batch` into the graph's inputs and replay; the previous step's values."""
        return self.in_flight.push(tag, self.graphed(batch))

    def flush(self) -> TaggedValues | None:
        """The last step's values, waiting for them."""
        return self.in_flight.flush()

    def prepare_optimizer(self) -> None:
        """Learning rates and step counts as device tensors (after building or loading)."""
        prepare_optimizer(self.step.optimizer, self.device)


def install_fast_paths(runtime: Runtime, model: torch.nn.Module,
                       optimizer: torch.optim.Optimizer) -> GradientBuffers | None:
    """Swap the fast paths `runtime` decided into a built model: the one place they are
    installed. The linear layers' library (`Runtime.prepare_model`); with the optimizer
    stepping inside backward, its hooks and the largest layers' weight gradients streamed to
    the update or into recycled buffers, which are returned (crosskd.train.weight_gradients);
    under CPU autocast those layers keep a low-precision copy of their weight that the update
    refreshes, instead of casting it every step."""
    runtime.prepare_model(model)
    if not runtime.optimizer_in_backward:
        return None
    buffers = GradientBuffers(optimizer=optimizer)
    step_during_backward(optimizer, buffers)
    streamed = stream_weight_gradients(model, buffers)
    if runtime.device.type == "cpu" and runtime.precision.dtype is not None:
        keep_low_precision_copies(streamed, runtime.precision.dtype)
    return buffers


def build_runner(runtime: Runtime, task: RetrievalTask, optimizer: torch.optim.Optimizer,
                 before_capture: Callable[[], Any] = lambda: None) -> StepRunner:
    """The runner `runtime` calls for, its fast paths installed into the task's model."""
    buffers = install_fast_paths(runtime, task.model, optimizer)
    device = runtime.device
    cache = not runtime.cuda_graphs  # a graph casts the weights inside itself, every replay
    step = TrainingStep(task, optimizer, lambda: runtime.precision.autocast(device, cache),
                        runtime.optimizer_in_backward)
    if runtime.cuda_graphs:
        return GraphedRunner(step, device, before_capture)
    return EagerRunner(step, device, buffers)


def host_values(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Device scalars as floats, with one device-to-host copy for all of them."""
    return dict(zip(values, torch.stack(list(values.values())).tolist()))
