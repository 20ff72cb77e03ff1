"""Pairwise collaborative gating (CE): each expert's gate is an MLP of every (expert, other) pair.

The original runs the pair MLP once per ordered pair of experts, so every pair gets its own
batch-norm statistics over the batch. Here the M pairs of one expert run at once: the first
linear layer acts on the concatenation [x_i, x_j], so it splits into two per-expert
projections that are computed once, and batch norm is applied with per-pair statistics;
the running statistics are updated as the original's one-call-per-pair sequence would.
The MLP's last linear layer commutes with the average over partners, so it is applied once
per expert to the averaged hidden state instead of once per pair. The batch statistics of
all pairs of all experts are folded into the running buffers once, after the last expert
(the sequence of momentum updates is linear, so its order is kept exactly): per-call
updates were two thirds of the gating's small operations, each a kernel launch on a GPU.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: added to the number of available pairs before averaging, as in the original.
PAIR_COUNT_EPS = 1e-11


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
        var over the batch dimension took 15x longer on the CPU.
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
    or, given `pending`, when the caller applies it (after further calls).
    """
    batch, groups, dim = x.shape
    if not bn.training:
        return bn(x.reshape(batch * groups, dim)).reshape(batch, groups, dim)
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


def _split_final_linear(shared: nn.Sequential) -> tuple[list[nn.Module], nn.Linear | None]:
    """The gate MLP's layers before its final linear layer, and that layer (None if absent)."""
    layers = list(shared)
    if layers and isinstance(layers[-1], nn.Linear):
        return layers[:-1], layers[-1]
    return layers, None


def _gate_mlp(hidden: torch.Tensor, shared: list[nn.Module], pending: PendingRunningStats
              ) -> torch.Tensor:
    """Run the layers after the first pair projection on `[B, P, D]`, batch norm per pair."""
    for layer in shared:
        if isinstance(layer, nn.BatchNorm1d):
            hidden = groupwise_batch_norm(hidden, layer, pending)
        else:
            hidden = layer(hidden)
    return hidden


def collaborative_embeddings(experts: torch.Tensor, availability: torch.Tensor, first: nn.Linear,
                             shared: nn.Sequential, units: Sequence[nn.Module]) -> torch.Tensor:
    """Gate and embed projected experts `[B, M, D]` given availability `[B, M]`; returns `[B, M, D]`.

    The gate of expert i is the mean over available partners j of g([x_i, x_j]); `first` is
    g's first layer on the concatenated pair, `shared` its remaining layers, and `units[i]`
    turns (x_i, gate_i) into the final embedding. As in the original, experts are processed
    in order and a partner j < i enters g with its final embedding, j >= i with x_j.
    """
    dim = experts.shape[-1]
    body, last = _split_final_linear(shared)
    # split and unbound once, so that backward assembles each gradient once (a slice per use
    # builds a zero-filled full-size gradient for every use, then adds them up)
    own_weight, partner_weight = first.weight.split(dim, dim=1)
    own = F.linear(experts, own_weight, first.bias).unbind(dim=1)  # M x [B, D]
    partners = list(F.linear(experts, partner_weight).unbind(dim=1))
    pair_available = availability[:, :, None] * availability[:, None, :]  # [B, M, M]
    num_pairs = pair_available.sum(dim=2, keepdim=True)  # [B, M, 1]
    outputs = []
    pending = PendingRunningStats()
    for i, unit in enumerate(units):
        hidden = _gate_mlp(own[i][:, None] + torch.stack(partners, dim=1), body, pending)
        summed = torch.bmm(pair_available[:, i, None, :], hidden).squeeze(1)  # [B, D]
        if last is not None:  # sum_j a_ij (W h_ij + b) = W sum_j a_ij h_ij + b sum_j a_ij
            summed = torch.addcmul(F.linear(summed, last.weight), num_pairs[:, i], last.bias)
        gate = summed / (num_pairs[:, i] + PAIR_COUNT_EPS)
        outputs.append(unit(experts[:, i], gate))
        partners[i] = F.linear(outputs[-1], partner_weight)
    pending.apply()
    return torch.stack(outputs, dim=1)


def gate_mlp_layers(dim: int, num_layers: int) -> list[nn.Module]:
    """The shared layers after the first pair projection: (BN, Mish, Linear) x (num_layers - 1)."""
    layers: list[nn.Module] = []
    for _ in range(num_layers - 1):
        layers += [nn.BatchNorm1d(dim), nn.Mish(), nn.Linear(dim, dim)]
    return layers
