"""The whole training step (forward, loss, backward, optimizer) as a replayed CUDA graph.

An eager CE+ step launches about 1,700 kernels from Python, most of them tiny, so on a GPU
it is bound by launch latency rather than arithmetic (88 ms of wall time for 11 ms of
kernels on an H100, docs/PERFORMANCE.md). A CUDA graph records the launches once and
replays them with one call. What capture needs, and how the step provides it:

- fixed addresses: each batch (on the host or already on the GPU) is copied into the
  graph's own input tensors; batches have fixed shapes (tokens are padded to max_tokens);
- no host synchronisation: the loss terms stay on the device and are read after the replay;
- gradients in fixed tensors: the step sets `.grad` to None, so backward allocates each
  gradient in the graph's private memory pool (at the same address in every replay) and
  hands it over without a kernel; zeroing shared gradients and accumulating into them cost
  two passes over the 1 GB of MSRVTT CE+ gradients and 122 kernels per step;
- an optimizer whose step counts and learning rate live on the device (`prepare_optimizer`);
  a scheduler then changes the rate by filling that tensor in place;
- autocast without its weight cache (the bfloat16 copies are made inside the graph).

Each new batch shape (the full batches, then the last, smaller one) first trains
`WARMUP_STEPS` batches eagerly on a side stream, as CUDA's capture rules ask, and is then
captured; the captured step is replayed at once, so every batch is trained on exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from crosskd.config import ConfigError
from crosskd.data.batch import Batch

#: eager steps of a batch shape before it is captured.
WARMUP_STEPS = 2
#: optimizers whose update can be captured (they accept `capturable` and a tensor lr).
CAPTURABLE_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW, torch.optim.RAdam)


def graphs_apply(setting: Any, device: torch.device, optimizer: torch.optim.Optimizer,
                 step_in_backward: bool) -> bool:
    """Whether `trainer.cuda_graphs` ("auto", true or false) turns graphs on for this run."""
    if setting not in ("auto", True, False):
        raise ConfigError(f"config key trainer.cuda_graphs: expected \"auto\", true or false, "
                          f"got {setting!r}")
    missing = [reason for reason, ok in (
        ("a CUDA device", device.type == "cuda"),
        ("an Adam, AdamW or RAdam optimizer", isinstance(optimizer, CAPTURABLE_OPTIMIZERS)),
        ("trainer.optimizer_in_backward off", not step_in_backward)) if not ok]
    if setting is True and missing:
        raise ConfigError("config key trainer.cuda_graphs is true, but CUDA graphs need "
                          + " and ".join(missing))
    return setting is not False and not missing


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

    def __init__(self, forward: Callable[..., dict[str, Any]], objective: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, autocast: Callable[[], Any],
                 device: torch.device, before_capture: Callable[[], Any] = lambda: None) -> None:
        """`before_capture` runs before each capture: no other thread may use the GPU during
        one (a background checkpoint's device-to-host copies invalidate it)."""
        self.forward = forward
        self.objective = objective
        self.optimizer = optimizer
        self.autocast = autocast
        self.device = device
        self.before_capture = before_capture
        self.captured: dict[tuple, _Captured] = {}
        self.eager_steps: dict[tuple, int] = {}

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Train on `batch` (on the host or the GPU); returns the loss and its terms (device
        scalars, overwritten by the next call)."""
        tensors = batch.tensors()
        key = _signature(batch, tensors)
        captured = self.captured.get(key)
        if captured is not None:
            for static, new in zip(captured.inputs, tensors, strict=True):
                static.copy_(new, non_blocking=True)
            captured.graph.replay()
            return captured.outputs
        if self.eager_steps.get(key, 0) < WARMUP_STEPS:
            self.eager_steps[key] = self.eager_steps.get(key, 0) + 1
            return _on_side_stream(self._step, batch.to(self.device))
        static = batch.map_tensors(lambda tensor: tensor.to(self.device, copy=True))
        self.before_capture()
        captured = self.captured[key] = _capture(self._step, static)
        captured.graph.replay()
        return captured.outputs

    def _step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One eager training step on a batch on the GPU, with no host synchronisation."""
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            output = self.forward(batch.experts, batch.ind, batch.text)
            total, terms = self.objective.terms(output, batch.distil_text, batch.distil_video)
        total.backward()
        self.optimizer.step()
        return {"loss": total.detach().float(), **terms}


def _signature(batch: Batch, tensors: list[torch.Tensor]) -> tuple:
    """What a graph is specific to: the batch's keys, and the shape and dtype of every one
    of its `tensors` (`batch.tensors()`)."""
    def keys(tree: Any) -> Any:
        return None if tree is None else tuple((k, keys(v) if isinstance(v, dict) else None)
                                               for k, v in tree.items())
    return (keys(batch.experts), keys(batch.ind), keys(batch.distil_video),
            keys(batch.distil_text), *((tuple(t.shape), t.dtype) for t in tensors))


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
