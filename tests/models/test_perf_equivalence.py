"""Speed rewrites of the model give the original's outputs AND gradients (training needs both).

Collaborative gating applies the gate MLP's last linear layer after averaging over partners
(it commutes with the masked mean). The fast ops it calls are tested in tests/ops.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from crosskd.models.collaborative_gating import collaborative_embeddings, gate_mlp_layers
from crosskd.models.gating import GatedEmbeddingUnitReasoning


def pairwise_loop(experts, availability, first, shared, units):
    """The original's order: full MLP per (i, j) pair, finished experts replace their input."""
    current = list(experts.unbind(1))
    for i, unit in enumerate(units):
        total, count = 0, 0
        for j in range(len(current)):
            both = availability[:, i] * availability[:, j]
            total = total + shared(first(torch.cat((current[i], current[j]), 1))) * both[:, None]
            count = count + both
        current[i] = unit(current[i], total / (count + 1e-11)[:, None])
    return torch.stack(current, dim=1)


@pytest.mark.parametrize("num_g_layers", [1, 2, 3])
def test_gradients_match_the_pairwise_loop(num_g_layers):
    torch.manual_seed(1)
    dim, num = 6, 4
    modules = nn.ModuleList([nn.Linear(2 * dim, dim),
                             nn.Sequential(*gate_mlp_layers(dim, num_g_layers)),
                             nn.ModuleList(GatedEmbeddingUnitReasoning(dim) for _ in range(num))])
    reference = copy.deepcopy(modules)
    experts = torch.randn(9, num, dim, requires_grad=True)
    availability = (torch.rand(9, num) > 0.3).float()
    availability[0] = 0  # a video without experts: its gates are exactly zero
    weights = torch.randn(9, num, dim)  # a loss that weighs every output differently

    (collaborative_embeddings(experts, availability, *modules) * weights).sum().backward()
    ours = experts.grad.clone()
    experts.grad = None
    (pairwise_loop(experts, availability, *reference) * weights).sum().backward()

    # float32 rounding (which depends on the thread count) reaches ~3e-6 on gradients of
    # order 1-8; the biases feeding batch norm have an exactly-zero gradient plus noise.
    torch.testing.assert_close(ours, experts.grad, rtol=1e-4, atol=1e-5)
    for (name, mine), theirs in zip(modules.named_parameters(), reference.parameters()):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=1e-4, atol=1e-5, msg=name)
