"""The shared-input projections finish each weight gradient before the next, each by its layer.

(Values and gradients against separate layers: tests/ops/test_ops.py.)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from crosskd.ops import shared_input_linear

MATMULS = (torch.ops.aten.mm.default, torch.ops.aten.mm.out)
if hasattr(torch.ops.mkldnn, "_linear_pointwise"):  # the oneDNN backend (crosskd.ops.cpu_matmul)
    MATMULS += (torch.ops.mkldnn._linear_pointwise.default,)


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


def test_each_layer_computes_its_own_output_and_weight_gradient_as_a_module():
    """The layers are called as modules (a runner's swapped-in class and forward hooks take
    effect) on the input detached: the op alone gives the input its gradient, once."""
    torch.manual_seed(3)
    layers = [nn.Linear(30, 50) for _ in range(3)]
    inputs = []
    for layer in layers:
        layer.register_forward_hook(lambda module, args, out: inputs.append(args[0]))
    x = torch.randn(6, 30, requires_grad=True)
    sum(out.sum() for out in shared_input_linear(x, layers)).backward()
    assert len(inputs) == 3 and not any(seen.requires_grad for seen in inputs)
    expected = sum(layer.weight.sum(0) for layer in layers).expand(6, 30)
    torch.testing.assert_close(x.grad, expected)
    assert all(layer.weight.grad is not None for layer in layers)
