"""The training task: a model and its objective, turning a batch into a loss.

Every way of running a step (eager, optimizer inside backward, CUDA-graphed) calls the
task, so what a batch's loss is lives here once; how the step is run lives in
crosskd.train.step and crosskd.train.runners.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from crosskd.data.batch import Batch


class RetrievalTask(nn.Module):
    """The retrieval model (or its compiled form) and the objective over its output."""

    def __init__(self, model: nn.Module, objective: nn.Module,
                 forward: Callable[..., dict[str, Any]] | None = None,
                 global_batch: Callable[[Batch], Batch] | None = None) -> None:
        """`forward` runs the model (e.g. `torch.compile(model)`); `model` by default.
        `global_batch` joins what the objective reads of this rank's batch with the other
        ranks' (distributed training, crosskd.train.distributed; the forward joins the
        embeddings)."""
        super().__init__()
        self.model = model
        self.objective = objective
        self._forward = forward or model
        self._global_batch = global_batch

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total loss of `batch` and each term's detached value (device scalars)."""
        output = self._forward(batch.experts, batch.ind, batch.text)
        if self._global_batch is not None:
            batch = self._global_batch(batch)
        return self.objective.terms(output, batch)
