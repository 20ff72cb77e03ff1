"""Speed rewrites of the model give the original's outputs AND gradients (training needs both).

Collaborative gating applies the gate MLP's last linear layer after averaging over partners
(it commutes with the masked mean); the text projections share one autograd node whose
backward accumulates the input gradient in place.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from crosskd.models.collaborative_gating import collaborative_embeddings, gate_mlp_layers
from crosskd.models.gating import GatedEmbeddingUnitReasoning
from crosskd.models.shared_input import shared_input_linear

MATMULS = (torch.ops.aten.mm.default, torch.ops.aten.mm.out)


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


@pytest.mark.parametrize("input_grad", [True, False])
def test_shared_input_linear_matches_separate_layers(input_grad):
    torch.manual_seed(2)
    layers = nn.ModuleList(nn.Linear(40, 5) for _ in range(3))
    reference = copy.deepcopy(layers)
    x = torch.randn(8, 40, requires_grad=input_grad)
    outputs = shared_input_linear(x, layers)
    # the last output is unused: its layer gets no gradient, as with separate layers
    (outputs[0].square().sum() + (outputs[1] * 3).sum()).backward()
    ours = x.grad.clone() if input_grad else None
    x.grad = None
    expected = [layer(x) for layer in reference]
    for ours_out, theirs_out in zip(outputs, expected):
        torch.testing.assert_close(ours_out, theirs_out, rtol=0, atol=0)
    (expected[0].square().sum() + (expected[1] * 3).sum()).backward()
    if input_grad:
        torch.testing.assert_close(ours, x.grad)
    for mine, theirs in zip(layers.parameters(), reference.parameters()):
        torch.testing.assert_close(mine.grad, theirs.grad, rtol=0, atol=0)
    assert layers[2].weight.grad is None


def test_shared_input_linear_hands_each_weight_gradient_over_before_the_next():
    """Each weight's gradient is complete (its accumulation hook runs) before the next one is
    computed, so a hook that consumes and frees it keeps one alive at a time."""
    torch.manual_seed(3)
    layers = [nn.Linear(30, 50) for _ in range(4)]
    weight_numel = layers[0].weight.numel()
    events = []

    class WeightGradients(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func in MATMULS and out.numel() == weight_numel:
                events.append("computed")
            return out

    def consume(param: torch.Tensor) -> None:
        events.append("consumed")
        param.grad = None

    for layer in layers:
        layer.weight.register_post_accumulate_grad_hook(consume)
    x = torch.randn(6, 30, requires_grad=True)
    loss = sum(out.square().sum() for out in shared_input_linear(x, layers))
    with WeightGradients():
        loss.backward()
    assert events == ["computed", "consumed"] * 4
    assert x.grad is not None


def test_shared_input_linear_backward_under_bf16_autocast():
    """Gradients come back in each input's dtype and close to separate autocast linears."""
    torch.manual_seed(0)
    layers = [nn.Linear(24, 8) for _ in range(3)]
    x = torch.randn(5, 24, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = shared_input_linear(x, layers)
    sum(out.float().square().sum() for out in outputs).backward()
    fused = [x.grad.clone()] + [layer.weight.grad.clone() for layer in layers]
    x.grad = None
    for layer in layers:
        layer.weight.grad = layer.bias.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = [layer(x) for layer in layers]
    sum(out.float().square().sum() for out in outputs).backward()
    plain = [x.grad] + [layer.weight.grad for layer in layers]
    for got, want in zip(fused, plain):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-2)
