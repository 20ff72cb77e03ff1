"""crosskd.ops.cpu_matmul: oneDNN's products agree with torch's for any layout, and a model's
linear layers are swapped onto them in place (values and gradients on the ops' own example:
tests/ops/test_ops.py)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from crosskd.ops import PlannedLinear, cpu_matmul, planned_linear, use_product_plan

needs_onednn = pytest.mark.skipif(not cpu_matmul.onednn_available(),
                                  reason="this torch build has no oneDNN linear kernel")


class _KernelsSeen(TorchDispatchMode):
    """Records the ops run and the strides of every oneDNN weight."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list = []
        self.weights: list[torch.Tensor] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(func)
        if "mkldnn" in str(func):
            self.weights.append(args[1])
        return func(*args, **(kwargs or {}))


def _layout(tensor: torch.Tensor, kind: str) -> torch.Tensor:
    """The same values as `tensor` [rows, cols] laid out as `kind`."""
    if kind == "transposed":
        return tensor.t().contiguous().t()
    if kind == "slice":  # the columns of a wider tensor, as a split weight is
        wide = torch.zeros(tensor.shape[0], tensor.shape[1] + 3, dtype=tensor.dtype)
        wide[:, 1:1 + tensor.shape[1]] = tensor
        return wide[:, 1:1 + tensor.shape[1]]
    return tensor.clone()


def _reference_gradients(x, weight, bias, upstream):
    leaves = [t.detach().double().requires_grad_() for t in (x, weight, bias)]
    out = F.linear(*leaves)
    (out * upstream.double()).sum().backward()
    return out, [leaf.grad for leaf in leaves]


@needs_onednn
@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 9), inputs=st.integers(1, 33), outputs=st.integers(1, 17),
       x_layout=st.sampled_from(["plain", "transposed", "slice"]),
       w_layout=st.sampled_from(["plain", "transposed", "slice"]), seed=st.integers(0, 99))
def test_onednn_linear_agrees_with_float64_for_every_layout(rows, inputs, outputs, x_layout,
                                                            w_layout, seed):
    """Values and all three gradients within float32 rounding of a float64 reference, for
    inputs and weights that are contiguous, transposed or slices of wider tensors (the
    model's split weights); 3-D inputs: the ops' example in tests/ops/test_ops.py."""
    generator = torch.Generator().manual_seed(seed)
    x = _layout(torch.randn(rows, inputs, generator=generator), x_layout)
    weight = _layout(torch.randn(outputs, inputs, generator=generator), w_layout)
    bias = torch.randn(outputs, generator=generator)
    upstream = torch.randn(rows, outputs, generator=generator)
    leaves = [t.detach().requires_grad_() for t in (x, weight, bias)]
    seen = _KernelsSeen()
    with seen:
        out = planned_linear(*leaves)
        (out * upstream).sum().backward()
    expected, gradients = _reference_gradients(x, weight, bias, upstream)
    atol = 1e-5 * (1 + inputs + rows)
    torch.testing.assert_close(out.double(), expected, atol=atol, rtol=1e-5)
    for leaf, gradient in zip(leaves, gradients):
        torch.testing.assert_close(leaf.grad.double(), gradient, atol=atol, rtol=1e-5)
    assert seen.weights, "oneDNN did not run"
    # any other strides run oneDNN's reference kernel (~1000x slower): copied first
    assert all(w.is_contiguous() or w.t().is_contiguous() for w in seen.weights)


def _two_layer_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(40, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))


def test_a_plain_model_runs_torch_linear_bit_for_bit():
    """Until a runner swaps its layers, a model's nn.Linear runs torch's product only."""
    model = _two_layer_model()
    x = torch.randn(5, 40)
    seen = _KernelsSeen()
    with seen, torch.no_grad():
        out = model(x)
    assert torch.equal(out, model[2](model[1](F.linear(x, model[0].weight, model[0].bias))))
    assert not seen.weights


@needs_onednn
def test_use_onednn_swaps_every_linear_in_place_and_keeps_its_state():
    """Parameters (the optimizer's references), state-dict keys and values stay; the
    products run on oneDNN and agree with torch's to float32 rounding."""
    model = _two_layer_model()
    params, state = list(model.parameters()), copy.deepcopy(model.state_dict())
    x = torch.randn(5, 40)
    expected = model(x)
    assert use_product_plan(model, cpu_matmul.ONEDNN) == 2
    assert all(isinstance(model[i], PlannedLinear) for i in (0, 2))
    assert all(a is b for a, b in zip(model.parameters(), params))
    assert list(model.state_dict()) == list(state)
    assert all(torch.equal(model.state_dict()[key], value) for key, value in state.items())
    seen = _KernelsSeen()
    with seen:
        out = model(x)
    assert len(seen.weights) == 2
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


@needs_onednn
def test_onednn_runs_only_on_float32_cpu_tensors_outside_autocast():
    """float64 and autocast's bfloat16 go to torch's kernels; float32 to oneDNN."""
    for dtype, autocast, expect in ((torch.float32, False, True), (torch.float64, False, False),
                                    (torch.float32, True, False)):
        seen = _KernelsSeen()
        x, weight = torch.randn(4, 8, dtype=dtype), torch.randn(3, 8, dtype=dtype)
        with seen, torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            planned_linear(x, weight)
        assert bool(seen.weights) is expect, (dtype, autocast)
