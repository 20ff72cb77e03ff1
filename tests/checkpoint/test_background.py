"""The background checkpoint writer: snapshots, one write at a time, errors not lost."""

from __future__ import annotations

import threading

import pytest
import torch

from crosskd.checkpoint.background import BackgroundWriter, snapshot


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_a_snapshot_does_not_follow_later_changes(device):
    """On a GPU the copy reaches the host on a side stream while the weights change."""
    weights = torch.zeros(2**20, device=device)
    taken = snapshot({"state": [weights, (weights, 1)], "epoch": 2})
    weights.add_(1)
    copied = taken.get()
    assert copied["epoch"] == 2 and isinstance(copied["state"][1], tuple)
    assert all(t.device.type == "cpu" and float(t.abs().sum()) == 0
               for t in (copied["state"][0], copied["state"][1][0]))


def test_writes_run_one_at_a_time_and_errors_reach_the_caller():
    writer = BackgroundWriter()
    release, order = threading.Event(), []
    threading.Timer(0.2, release.set).start()
    writer.submit(lambda: (release.wait(5), order.append("first")))
    writer.submit(lambda: order.append("second"))  # must wait for the first
    writer.wait()
    assert order == ["first", "second"]
    writer.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        writer.wait()
    writer.wait()  # reported once
