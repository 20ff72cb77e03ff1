"""The shared-input projections finish each weight gradient before the next, into given buffers.

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


def test_weight_gradients_are_written_into_the_buffers_given():
    """Every projection's weight gradient is the tensor taken from the buffers object (in
    backward order); under autocast (another dtype than the weight) none is taken."""
    layers = [nn.Linear(30, 50) for _ in range(3)]
    taken = []

    class Buffers:
        def take(self, shape, dtype, device):
            buffer = torch.empty(shape, dtype=dtype, device=device)
            taken.append(buffer.data_ptr())  # not the tensor: the gradient must be its only user
            return buffer

        def row_updates(self, param):
            return None

    x = torch.randn(6, 30, requires_grad=True)
    sum(out.sum() for out in shared_input_linear(x, layers, Buffers())).backward()
    assert taken == [layer.weight.grad.data_ptr()
                                            for layer in reversed(layers)]
    taken.clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = shared_input_linear(x, layers, Buffers())
    sum(out.float().sum() for out in outputs).backward()
    assert taken == []
