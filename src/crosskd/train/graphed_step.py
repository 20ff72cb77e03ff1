"""The whole training step (forward, loss, backward, optimizer) as a replayed CUDA graph.

An eager CE+ step launches about 1,700 kernels from Python, most of them tiny, so on a GPU
it is bound by launch latency rather than arithmetic. A CUDA graph records the launches once
and replays them with one call. What capture needs, and how the step provides it:

- fixed addresses: each batch is copied into the graph's own input tensors;
- no host synchronisation: the loss terms stay on the device and are read after the replay;
- gradients in fixed tensors: the step zeroes the existing `.grad` tensors and backward
  accumulates into them, so the graphs of different batch shapes share them;
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


def graphs_apply(setting: Any, device: torch.device, resident: bool,
                 optimizer: torch.optim.Optimizer, step_in_backward: bool) -> bool:
    """Whether `trainer.cuda_graphs` ("auto", true or false) turns graphs on for this run."""
    if setting not in ("auto", True, False):
        raise ConfigError(f"config key trainer.cuda_graphs: expected \"auto\", true or false, "
                          f"got {setting!r}")
    missing = [reason for reason, ok in (
        ("a CUDA device", device.type == "cuda"),
        ("the training data resident on the GPU (trainer.resident_data)", resident),
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
    state["param_groups"] = [{**group, "lr": float(group["lr"]), "capturable": False}
                             for group in state["param_groups"]]
    return state


@dataclass
class _Captured:
    """One captured step: the graph, the tensors it reads the batch from, and its outputs."""

    graph: torch.cuda.CUDAGraph
    inputs: list[torch.Tensor]
    outputs: dict[str, torch.Tensor]


class GraphedTrainStep:
    """Trains on one batch per call through CUDA graphs (one per batch shape)."""

    def __init__(self, forward: Callable[..., dict[str, Any]], objective: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, autocast: Callable[[], Any]) -> None:
        self.forward = forward
        self.objective = objective
        self.optimizer = optimizer
        self.autocast = autocast
        self.captured: dict[tuple, _Captured] = {}
        self.eager_steps: dict[tuple, int] = {}

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Train on `batch`; returns the loss and its terms (device scalars)."""
        names = (tuple(batch.experts), tuple(batch.ind))
        inputs = [*batch.experts.values(), *batch.ind.values(), batch.text]
        key = (names, *((tuple(t.shape), t.dtype) for t in inputs))
        captured = self.captured.get(key)
        if captured is not None:
            torch._foreach_copy_(captured.inputs, inputs)
            captured.graph.replay()
            return captured.outputs
        step = self._step_function(names)
        if self.eager_steps.get(key, 0) < WARMUP_STEPS:
            self.eager_steps[key] = self.eager_steps.get(key, 0) + 1
            return _on_side_stream(step, inputs)
        captured = self.captured[key] = _capture(step, inputs)
        captured.graph.replay()
        return captured.outputs

    def _step_function(self, names: tuple[tuple[str, ...], tuple[str, ...]]
                       ) -> Callable[..., dict[str, torch.Tensor]]:
        """The step on flat inputs (experts, then availability, then the caption tokens)."""
        expert_names, ind_names = names

        def step(*inputs: torch.Tensor) -> dict[str, torch.Tensor]:
            experts = dict(zip(expert_names, inputs))
            ind = dict(zip(ind_names, inputs[len(expert_names):]))
            self.optimizer.zero_grad(set_to_none=False)  # in place: the graphs' gradients
            with self.autocast():
                output = self.forward(experts, ind, inputs[-1])
                total, terms = self.objective.terms(output)
            total.backward()
            self.optimizer.step()
            return {"loss": total.detach().float(), **terms}

        return step


def _on_side_stream(step: Callable[..., dict[str, torch.Tensor]],
                    inputs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Run `step` eagerly on a side stream that the current stream then waits for."""
    current = torch.cuda.current_stream()
    side = torch.cuda.Stream()
    side.wait_stream(current)
    with torch.cuda.stream(side):
        outputs = step(*inputs)
    current.wait_stream(side)
    return outputs


def _capture(step: Callable[..., dict[str, torch.Tensor]],
             inputs: list[torch.Tensor]) -> _Captured:
    """Record `step` on copies of `inputs` (nothing runs until the graph is replayed)."""
    static = [tensor.clone() for tensor in inputs]
    graph = torch.cuda.CUDAGraph()
    torch.cuda.synchronize()
    with torch.cuda.graph(graph):
        outputs = step(*static)
    return _Captured(graph, static, outputs)
