"""Loss values read one step late: each push returns the previous step's values, as they
were when it was pushed."""

from __future__ import annotations

import pytest
import torch

from crosskd.train.deferred_values import DeferredValues

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_each_push_returns_the_previous_steps_values_as_pushed(device):
    outputs = {"loss": torch.zeros((), device=device), "margin": torch.zeros((), device=device)}
    deferred = DeferredValues()
    returned = []
    for step in range(1, 4):
        outputs["loss"].fill_(step)  # a graph overwrites its outputs in place
        outputs["margin"].fill_(-step)
        returned.append(deferred.push(step, outputs))
    returned.append(deferred.flush())
    assert returned == [None, (1, {"loss": 1.0, "margin": -1.0}),
                        (2, {"loss": 2.0, "margin": -2.0}), (3, {"loss": 3.0, "margin": -3.0})]
    assert deferred.flush() is None


def test_values_keep_their_names_and_reach_the_host_as_floats():
    deferred = DeferredValues()
    deferred.push(7, {"loss": torch.tensor(float("nan")), "x": torch.tensor(2, dtype=torch.int64)})
    tag, values = deferred.flush()
    assert tag == 7 and list(values) == ["loss", "x"]
    assert values["loss"] != values["loss"] and values["x"] == 2.0
    assert all(type(value) is float for value in values.values())
