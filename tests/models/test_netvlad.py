"""NetVLAD: explicit per-cluster reference, ghost clusters, order invariance, unit norm."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from crosskd.models.netvlad import NetVLAD


def reference_netvlad(layer: NetVLAD, tokens: torch.Tensor) -> torch.Tensor:
    """Loop over videos and clusters: residual sums, intra-norm, flatten feature-major, L2."""
    logits = layer.batch_norm(tokens.reshape(-1, layer.feature_size) @ layer.clusters)
    soft = F.softmax(logits, dim=1).reshape(tokens.shape[0], tokens.shape[1], -1)
    rows = []
    for b in range(tokens.shape[0]):
        columns = []
        for k in range(layer.cluster_size):
            residual = (soft[b, :, k:k + 1] * (tokens[b] - layer.clusters2[0, :, k])).sum(0)
            columns.append(F.normalize(residual, dim=0))
        rows.append(F.normalize(torch.stack(columns, dim=1).reshape(-1), dim=0))
    return torch.stack(rows)


@settings(max_examples=20, deadline=None)
@given(batch=st.integers(1, 4), tokens=st.integers(1, 5), dim=st.integers(1, 6),
       clusters=st.integers(1, 4), ghosts=st.integers(0, 2), seed=st.integers(0, 1000))
def test_matches_reference_and_has_unit_norm(batch, tokens, dim, clusters, ghosts, seed):
    torch.manual_seed(seed)
    layer = NetVLAD(dim, clusters, ghosts).eval()
    layer.batch_norm.running_mean.normal_()
    x = torch.randn(batch, tokens, dim)
    out = layer(x)
    assert out.shape == (batch, dim * clusters) == (batch, layer.out_dim)
    torch.testing.assert_close(out, reference_netvlad(layer, x), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(batch))


def test_ghost_clusters_take_assignment_mass_but_are_not_output():
    torch.manual_seed(0)
    layer = NetVLAD(4, 2, ghost_clusters=1).eval()
    assert layer.clusters.shape == (4, 3) and layer.clusters2.shape == (1, 4, 2)
    x = torch.randn(3, 5, 4)
    before = layer(x)
    with torch.no_grad():
        layer.clusters[:, 2] = 0.0
        layer.batch_norm.bias[2] = 10.0  # the ghost now absorbs almost every token
    assert not torch.allclose(layer(x), before)


def test_token_order_does_not_matter_in_eval_mode():
    torch.manual_seed(1)
    layer = NetVLAD(6, 3).eval()
    x = torch.randn(2, 7, 6)
    torch.testing.assert_close(layer(x), layer(x[:, torch.randperm(7)]))


@pytest.mark.parametrize("vanishing", [None, "cluster", "video", "whole"])
def test_gradients_match_the_reference(vanishing):
    """The fused normalisations (closed-form backward) and the in-place residual keep
    autograd's gradients, also below F.normalize's eps: video 0's tokens are ~1e-14 and the
    centre of cluster 0 (or of every cluster) is zero, so those residuals' norms are below
    eps; "whole" (float64, tokens ~1e-25) puts the second normalisation below eps too."""
    torch.manual_seed(2)
    dtype = torch.float64 if vanishing == "whole" else torch.float32
    layer = NetVLAD(6, 3, ghost_clusters=1).to(dtype)
    x = torch.randn(4, 5, 6, dtype=dtype)
    if vanishing:
        x[0] *= 1e-25 if vanishing == "whole" else 1e-14
        with torch.no_grad():
            layer.clusters2[0, :, 0 if vanishing == "cluster" else slice(None)] = 0
    x.requires_grad_()
    weights = torch.randn(4, 18, dtype=dtype)
    (layer(x) * weights).sum().backward()
    ours = [x.grad.clone(), *(p.grad.clone() for p in layer.parameters())]
    x.grad = None
    layer.zero_grad()
    (reference_netvlad(layer, x) * weights).sum().backward()
    theirs = [x.grad, *(p.grad for p in layer.parameters())]
    for mine, expected in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine, expected, rtol=1e-4, atol=1e-6)
