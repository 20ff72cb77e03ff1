"""Vectorised collaborative gating equals the original's one-call-per-pair computation."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from crosskd.models.collaborative_gating import collaborative_embeddings, gate_mlp_layers
from crosskd.models.gating import GatedEmbeddingUnitReasoning


def reference_embeddings(experts, availability, first, shared, units):
    """The original's loop: pairs (i, j) in order, experts replaced in place as they finish."""
    current = list(experts.unbind(1))
    for i, unit in enumerate(units):
        total, count = 0, 0
        for j in range(len(current)):
            hidden = shared(first(torch.cat((current[i], current[j]), dim=1)))
            both = availability[:, i] * availability[:, j]
            total = total + hidden * both[:, None]
            count = count + both
        current[i] = unit(current[i], total / (count + 1e-11)[:, None])
    return torch.stack(current, dim=1)


@pytest.mark.parametrize("training", [True, False])
def test_collaborative_embeddings_equal_the_pairwise_loop(training):
    torch.manual_seed(0)
    dim, num = 8, 4
    first = nn.Linear(2 * dim, dim)
    shared = nn.Sequential(*gate_mlp_layers(dim, 3))
    units = nn.ModuleList(GatedEmbeddingUnitReasoning(dim) for _ in range(num))
    modules = nn.ModuleList([first, shared, units]).train(training)
    reference_modules = copy.deepcopy(modules)
    experts = torch.randn(10, num, dim)
    availability = (torch.rand(10, num) > 0.3).float()
    availability[0] = 0  # a video with no expert at all
    out = collaborative_embeddings(experts, availability, first, shared, units)
    expected = reference_embeddings(experts, availability, *reference_modules)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    for ours, theirs in zip(modules.modules(), reference_modules.modules()):
        if isinstance(ours, nn.BatchNorm1d):
            torch.testing.assert_close(ours.running_mean, theirs.running_mean)
            torch.testing.assert_close(ours.running_var, theirs.running_var)
            assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item()
