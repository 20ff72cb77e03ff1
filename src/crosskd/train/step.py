"""One training step: forward, loss, backward and update. Every runner uses this one."""

from __future__ import annotations

from typing import Callable, ContextManager

import torch

from crosskd.data.batch import Batch
from crosskd.train.task import RetrievalTask


class TrainingStep:
    """Train `task` on one batch with `optimizer`, under `autocast()`.

    Gradients are set to None first: the optimizer-in-backward hooks need it, and a CUDA
    graph's backward then allocates them in the graph's own memory. With
    `optimizer_in_backward` the update happens during backward (crosskd.train.backward_step).
    """

    def __init__(self, task: RetrievalTask, optimizer: torch.optim.Optimizer,
                 autocast: Callable[[], ContextManager], optimizer_in_backward: bool) -> None:
        self.task = task
        self.optimizer = optimizer
        self.autocast = autocast
        self.optimizer_in_backward = optimizer_in_backward

    def __call__(self, batch: Batch, skip_non_finite: bool = False) -> dict[str, torch.Tensor]:
        """Train on `batch` (already on the device); returns the loss and its terms as device
        scalars. `skip_non_finite` reads the loss on the host first and leaves the model
        untouched when it is NaN or infinite (a graph cannot: it never waits for the host)."""
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            total, terms = self.task(batch)
        values = {"loss": total.detach().float(), **terms}
        if skip_non_finite and not torch.isfinite(values["loss"]):
            return values
        total.backward()
        if not self.optimizer_in_backward:
            self.optimizer.step()
        return values
