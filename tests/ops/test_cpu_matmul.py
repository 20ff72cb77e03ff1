"""crosskd.ops.linear: oneDNN's products agree with torch's for any layout, and the backend
is the one chosen (values and gradients on the ops' own example: tests/ops/test_ops.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from crosskd.ops import Linear, cpu_matmul, linear

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
    cpu_matmul.set_backend("onednn")
    leaves = [t.detach().requires_grad_() for t in (x, weight, bias)]
    seen = _KernelsSeen()
    with seen:
        out = linear(*leaves)
        (out * upstream).sum().backward()
    expected, gradients = _reference_gradients(x, weight, bias, upstream)
    atol = 1e-5 * (1 + inputs + rows)
    torch.testing.assert_close(out.double(), expected, atol=atol, rtol=1e-5)
    for leaf, gradient in zip(leaves, gradients):
        torch.testing.assert_close(leaf.grad.double(), gradient, atol=atol, rtol=1e-5)
    assert seen.weights, "oneDNN did not run"
    # any other strides run oneDNN's reference kernel (~1000x slower): copied first
    assert all(w.is_contiguous() or w.t().is_contiguous() for w in seen.weights)


def test_torch_backend_is_torch_linear_bit_for_bit():
    """With "torch" chosen, `linear` and `Linear` are F.linear, and no oneDNN op runs."""
    cpu_matmul.set_backend("torch")
    layer = Linear(40, 7)
    x = torch.randn(5, 40)
    seen = _KernelsSeen()
    with seen, torch.no_grad():
        out = layer(x)
    assert torch.equal(out, F.linear(x, layer.weight, layer.bias))
    assert not seen.weights


@needs_onednn
def test_onednn_runs_only_on_float32_cpu_tensors_outside_autocast():
    """float64 and autocast's bfloat16 go to torch's kernels; float32 to oneDNN."""
    cpu_matmul.set_backend("onednn")
    for dtype, autocast, expect in ((torch.float32, False, True), (torch.float64, False, False),
                                    (torch.float32, True, False)):
        seen = _KernelsSeen()
        x, weight = torch.randn(4, 8, dtype=dtype), torch.randn(3, 8, dtype=dtype)
        with seen, torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            linear(x, weight)
        assert bool(seen.weights) is expect, (dtype, autocast)


def test_unknown_or_missing_backend_is_refused(monkeypatch):
    with pytest.raises(ValueError, match="unknown CPU matmul backend 'mkl'"):
        cpu_matmul.set_backend("mkl")
    monkeypatch.setattr(cpu_matmul, "onednn_available", lambda: False)
    with pytest.raises(RuntimeError, match="no oneDNN linear kernel"):
        cpu_matmul.set_backend("onednn")
    assert cpu_matmul.default_backend() == "torch"


def test_linear_module_keeps_nn_linear_parameters_and_state_dict():
    """Checkpoints of nn.Linear load into Linear unchanged (the model's module type only)."""
    plain = torch.nn.Linear(6, 4)
    ours = Linear(6, 4)
    ours.load_state_dict(plain.state_dict())
    assert isinstance(ours, torch.nn.Linear) and list(ours.state_dict()) == ["weight", "bias"]
    torch.testing.assert_close(ours(torch.ones(2, 6)), plain(torch.ones(2, 6)))
