"""Group-wise batch norm keeps float32 running statistics under bfloat16 autocast.

(Values, gradients and running statistics against separate calls: tests/ops/test_ops.py.)
"""

from __future__ import annotations

import torch
from torch import nn

from crosskd.ops import groupwise_batch_norm


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


class _CountedBatchNorm(nn.BatchNorm1d):
    """A subclass that normalises as its parent and counts its calls (as distributed
    training's global batch norm normalises over every rank's rows)."""

    calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return super().forward(x)


def test_a_batch_norm_subclass_is_called_once_per_group_in_training():
    """Its own forward decides its statistics, so the op does not compute them for it; in
    evaluation one call takes every row (running statistics treat rows alike)."""
    torch.manual_seed(0)
    counted, plain = _CountedBatchNorm(5), nn.BatchNorm1d(5)
    x = torch.randn(6, 4, 5)
    out = groupwise_batch_norm(x, counted.train())
    assert counted.calls == 4
    torch.testing.assert_close(out, groupwise_batch_norm(x, plain.train()))
    torch.testing.assert_close(counted.running_mean, plain.running_mean)
    groupwise_batch_norm(x, counted.eval())
    assert counted.calls == 5
