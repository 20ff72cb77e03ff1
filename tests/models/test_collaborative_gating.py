"""Vectorised collaborative gating equals the original's one-call-per-pair computation."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from crosskd.models.collaborative_gating import (PendingRunningStats, collaborative_embeddings,
                                                 gate_mlp_layers, groupwise_batch_norm)
from crosskd.models.gating import GatedEmbeddingUnitReasoning


def test_groupwise_batch_norm_equals_separate_calls_including_running_stats():
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(5)
    bn.running_mean.normal_()
    reference = copy.deepcopy(bn)
    x = torch.randn(6, 4, 5) * 3 + 1
    out = groupwise_batch_norm(x, bn.train())
    expected = torch.stack([reference(x[:, g]) for g in range(4)], dim=1)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(bn.running_mean, reference.running_mean)
    torch.testing.assert_close(bn.running_var, reference.running_var)
    assert bn.num_batches_tracked.item() == reference.num_batches_tracked.item() == 4
    torch.testing.assert_close(groupwise_batch_norm(x, bn.eval()),
                               torch.stack([reference.eval()(x[:, g]) for g in range(4)], 1))


def test_pending_running_stats_fold_many_calls_in_call_order():
    torch.manual_seed(0)
    modules = [nn.BatchNorm1d(5, momentum=0.3), nn.BatchNorm1d(5)]
    reference = copy.deepcopy(modules)
    pending = PendingRunningStats()
    for call in range(5):
        x = torch.randn(6, 1 + call % 3, 5) * (call + 1) + call
        bn, direct = modules[call % 2], reference[call % 2]
        torch.testing.assert_close(groupwise_batch_norm(x, bn.train(), pending),
                                   groupwise_batch_norm(x, direct.train()))
    torch.testing.assert_close(modules[0].running_mean, torch.zeros(5))  # nothing applied yet
    pending.apply()
    for ours, theirs in zip(modules, reference):
        torch.testing.assert_close(ours.running_mean, theirs.running_mean)
        torch.testing.assert_close(ours.running_var, theirs.running_var)
        assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item()


def test_running_stats_stay_float32_under_bf16_autocast():
    """Autocast would run the update's product in bfloat16 (errors ~1e-3); the statistics of
    bfloat16 inputs are folded in as float32 calls on the same values would."""
    torch.manual_seed(0)
    bn, reference = nn.BatchNorm1d(5), nn.BatchNorm1d(5)
    x = (torch.randn(6, 7, 5) * 3 + 1).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        groupwise_batch_norm(x, bn.train())
    for g in range(7):
        reference.train()(x[:, g].float())
    torch.testing.assert_close(bn.running_mean, reference.running_mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(bn.running_var, reference.running_var, rtol=1e-6, atol=1e-6)


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
