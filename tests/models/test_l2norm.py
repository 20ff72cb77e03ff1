"""l2_normalize is F.normalize with a closed-form backward: same values, same gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from crosskd.models.l2norm import l2_normalize


@st.composite
def rows(draw) -> tuple[torch.Tensor, int]:
    """A tensor of 1-3 dims and the dim to normalise along; one of its vectors (the whole
    tensor if 1-d) may be scaled to zero or below eps."""
    shape = draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))
    dim = draw(st.integers(0, len(shape) - 1))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    x = torch.randn(shape, generator=generator) * draw(st.sampled_from([1e-3, 1.0, 1e3]))
    factor = draw(st.sampled_from([1.0, 0.0, 1e-14]))
    if len(shape) == 1:
        return x * factor, dim
    x.select((dim + 1) % len(shape), 0).mul_(factor)  # a slice across the vectors
    return x, dim


def _value_and_gradient(normalize, x: torch.Tensor, dim: int, weight: torch.Tensor):
    x = x.clone().requires_grad_()
    out = normalize(x, dim)
    (out * weight).sum().backward()
    return out.detach(), x.grad


@settings(max_examples=60, deadline=None)
@given(rows())
def test_values_are_f_normalize_and_gradients_agree(case):
    x, dim = case
    weight = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    ours = _value_and_gradient(lambda t, d: l2_normalize(t, d), x, dim, weight)
    reference = _value_and_gradient(lambda t, d: F.normalize(t, dim=d), x, dim, weight)
    assert torch.equal(ours[0], reference[0])
    # a gradient entry is at most ~|weight| / ||x||, and both round at that scale
    scale = float(weight.abs().max() / x.norm(dim=dim).clamp_min(1e-12).min())
    torch.testing.assert_close(ours[1], reference[1], rtol=1e-5, atol=1e-5 * scale)


def test_gradcheck_in_float64():
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: l2_normalize(t, 1), (x,))
    assert torch.autograd.gradcheck(lambda t: l2_normalize(t, 0), (x,))


def test_below_eps_the_divisor_is_constant():
    """Where ||x|| < eps the output is x / eps, so the gradient is the upstream one / eps."""
    x = torch.full((1, 3), 1e-14, requires_grad=True)
    l2_normalize(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((1, 3), 1e12))


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_under_bf16_autocast_the_gradients_agree_with_f_normalize(device):
    """Under autocast (float32 norm on a GPU) the backward gets the output's gradients and
    returns a bfloat16 gradient, as autograd's does, equal up to bfloat16 rounding."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 768, generator=generator).to(device, torch.bfloat16)
    weight = torch.randn(64, 768, generator=generator).to(device)
    gradients = []
    for normalize in (l2_normalize, lambda t, d: F.normalize(t, dim=d)):
        leaf = x.clone().requires_grad_()
        with torch.autocast(device, dtype=torch.bfloat16):
            out = normalize(leaf, 1)
        (out.float() * weight).sum().backward()
        gradients.append(leaf.grad)
    assert gradients[0].dtype == gradients[1].dtype == torch.bfloat16
    ours, theirs = gradients[0].float(), gradients[1].float()
    assert float((ours - theirs).abs().max()) <= 2e-2 * float(theirs.abs().max())  # bf16 steps
