"""Pairwise collaborative gating (CE): each expert's gate is an MLP of every (expert, other) pair.

The original runs the pair MLP once per ordered pair of experts, so every pair gets its own
batch-norm statistics over the batch. Here the M pairs of one expert run at once: the first
linear layer acts on the concatenation [x_i, x_j], so it splits into two per-expert
projections that are computed once, and batch norm is applied with per-pair statistics;
the running statistics are updated as the original's one-call-per-pair sequence would,
once after the last expert (crosskd.ops.groupwise_batch_norm). The MLP's last linear layer
commutes with the average over partners, so it is applied once per expert to the averaged
hidden state instead of once per pair.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from crosskd.ops import PendingRunningStats, groupwise_batch_norm

#: added to the number of available pairs before averaging, as in the original.
PAIR_COUNT_EPS = 1e-11


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
    # contiguous once: the partner weight is used M + 1 times, and a column slice is copied
    # on every use by a product that needs whole rows
    own_weight, partner_weight = (w.contiguous() for w in first.weight.split(dim, dim=1))
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
