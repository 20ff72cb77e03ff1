"""Batch norm with statistics per group, and running statistics folded in later, once.

Collaborative gating applies one batch norm to the M pairs of an expert as M separate calls
would (each pair its own batch statistics), and does so for every expert. The running
buffers are updated as that sequence of calls would update them, but all at once after the
last call: the sequence of momentum updates is linear, so its order is kept exactly, and
per-call updates were two thirds of the gating's small operations, each a kernel on a GPU.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _sequential_running_update(running: torch.Tensor, stats: torch.Tensor,
                               momentum: float) -> torch.Tensor:
    """Running averages `[..., D]` after one momentum update per row of `stats` `[N, ..., D]`,
    in row order."""
    num_updates = stats.shape[0]
    exponents = torch.arange(num_updates - 1, -1, -1, dtype=torch.float64, device=stats.device)
    decay = (1 - momentum) ** exponents
    blended = (momentum * decay).to(stats.dtype) @ stats.reshape(num_updates, -1)
    return (1 - momentum) ** num_updates * running + blended.reshape(running.shape)


class PendingRunningStats:
    """Inputs of group-wise batch-norm calls, whose batch statistics are folded into each
    module's running buffers later, in call order: one update per module, not per call."""

    def __init__(self) -> None:
        self._inputs: dict[nn.BatchNorm1d, list[torch.Tensor]] = {}

    def add(self, bn: nn.BatchNorm1d, x: torch.Tensor) -> None:
        """Record the input `[B, G, D]` of one call of `bn` (batch norm keeps it anyway)."""
        self._inputs.setdefault(bn, []).append(x.detach())

    @torch.no_grad()
    def apply(self) -> None:
        """Update every module's running mean and variance and its count of calls.

        In the buffers' precision and without autocast, so bfloat16 training keeps float32
        running statistics; in two passes (mean, then squared deviations) because torch's
        var over the batch dimension is much slower on the CPU.
        """
        for bn, inputs in self._inputs.items():
            groups = torch.cat(inputs, dim=1)  # every group of every call, in call order
            with torch.autocast(groups.device.type, enabled=False):
                groups = groups.to(bn.running_mean.dtype)
                mean = groups.mean(dim=0)
                var = (groups - mean).square().sum(dim=0) / (groups.shape[0] - 1)
                running = torch.stack((bn.running_mean, bn.running_var))
                updated = _sequential_running_update(running, torch.stack((mean, var), dim=1),
                                                     bn.momentum)
            bn.running_mean.copy_(updated[0])
            bn.running_var.copy_(updated[1])
            bn.num_batches_tracked.add_(groups.shape[1])
        self._inputs.clear()


def groupwise_batch_norm(x: torch.Tensor, bn: nn.BatchNorm1d,
                         pending: PendingRunningStats | None = None) -> torch.Tensor:
    """Apply `bn` to `[B, G, D]` as G separate calls on `[B, D]` (group-wise batch statistics).

    In training the running buffers are updated as those calls would update them, at once
    or, given `pending`, when the caller applies it (after further calls). Batch statistics
    are computed here for a plain nn.BatchNorm1d only: a subclass may take them otherwise
    (over every rank's rows, crosskd.train.distributed), so in training it is called once
    per group, as the reference does.
    """
    if not bn.training:  # running statistics: each row on its own
        batch, groups, dim = x.shape
        return bn(x.reshape(batch * groups, dim)).reshape(batch, groups, dim)
    if type(bn) is not nn.BatchNorm1d:
        return reference_groupwise_batch_norm(x, bn)
    return _train_groupwise(x, bn, pending)


def _train_groupwise(x: torch.Tensor, bn: nn.BatchNorm1d,
                     pending: PendingRunningStats | None) -> torch.Tensor:
    """groupwise_batch_norm of a plain nn.BatchNorm1d in training mode."""
    batch, groups, dim = x.shape
    flat = x.reshape(batch, groups * dim)
    weight = bn.weight.repeat(groups) if bn.weight is not None else None
    bias = bn.bias.repeat(groups) if bn.bias is not None else None
    out = F.batch_norm(flat, None, None, weight, bias, training=True, eps=bn.eps)
    if bn.track_running_stats:
        if pending is None:
            own = PendingRunningStats()
            own.add(bn, x)
            own.apply()
        else:
            pending.add(bn, x)
    return out.reshape(batch, groups, dim)


def reference_groupwise_batch_norm(x: torch.Tensor, bn: nn.BatchNorm1d) -> torch.Tensor:
    """What groupwise_batch_norm computes: one call of `bn` per group."""
    return torch.stack([bn(x[:, group]) for group in range(x.shape[1])], dim=1)


def deferred_groupwise_batch_norms(inputs: Sequence[torch.Tensor],
                                   modules: Sequence[nn.BatchNorm1d]) -> tuple[torch.Tensor, ...]:
    """groupwise_batch_norm of input i with module i mod len(modules), the running statistics
    of all calls folded in after the last, as collaborative gating does."""
    pending = PendingRunningStats()
    outputs = tuple(groupwise_batch_norm(x, modules[i % len(modules)], pending)
                    for i, x in enumerate(inputs))
    pending.apply()
    return outputs


def reference_groupwise_batch_norms(inputs: Sequence[torch.Tensor],
                                    modules: Sequence[nn.BatchNorm1d]
                                    ) -> tuple[torch.Tensor, ...]:
    """What deferred_groupwise_batch_norms computes: one call per group, in order."""
    return tuple(reference_groupwise_batch_norm(x, modules[i % len(modules)])
                 for i, x in enumerate(inputs))


def _batch_norm(dim: int, momentum: float, generator: torch.Generator,
                dtype: torch.dtype) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(dim, momentum=momentum, dtype=dtype)
    with torch.no_grad():
        bn.weight.copy_(1 + torch.randn(dim, generator=generator))
        bn.bias.copy_(torch.randn(dim, generator=generator))
        bn.running_mean.copy_(torch.randn(dim, generator=generator))
    return bn


def _inputs(shapes: Sequence[tuple[int, int, int]], generator: torch.Generator,
            dtype: torch.dtype) -> list[torch.Tensor]:
    """Inputs of several scales and offsets (bfloat16: as autocast's linear layers make them)."""
    return [(torch.randn(shape, generator=generator) * (i + 1) + i).to(dtype).requires_grad_()
            for i, shape in enumerate(shapes)]


def example(dtype: torch.dtype) -> tuple[torch.Tensor, nn.BatchNorm1d]:
    """Four groups of six rows; the module's buffers and affine parameters float32 under
    autocast."""
    generator = torch.Generator().manual_seed(0)
    bn = _batch_norm(5, 0.1, generator, torch.float64 if dtype == torch.float64 else
                     torch.float32)
    return _inputs([(6, 4, 5)], generator, dtype)[0], bn


def deferred_example(dtype: torch.dtype
                     ) -> tuple[list[torch.Tensor], nn.ModuleList]:
    """Five calls alternating between two modules of different momentum."""
    generator = torch.Generator().manual_seed(0)
    params = torch.float64 if dtype == torch.float64 else torch.float32
    modules = nn.ModuleList(_batch_norm(5, momentum, generator, params)
                            for momentum in (0.3, 0.1))
    return _inputs([(6, 1 + call % 3, 5) for call in range(5)], generator, dtype), modules
