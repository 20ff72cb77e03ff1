"""crosskd.inference.product_table: each product on the library measured faster for its shape on
this CPU, measured once and kept in a table that later processes read instead of measuring."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, strategies as st

from crosskd.inference import product_table
from crosskd.inference.product_table import MeasuredPlan, measured_rows, product_key
from crosskd.ops import PlannedLinear, cpu_matmul

needs_onednn = pytest.mark.skipif(not cpu_matmul.onednn_available(),
                                  reason="this torch build has no oneDNN linear kernel")


def _timings(faster: dict[str, str]):
    """A `measure` that says `faster[product]` is the faster library, and counts its calls."""
    calls = []

    def measure(product, rows, weight_shape):
        calls.append((product, rows, weight_shape))
        winner = faster[product]
        return {lib: (1.0 if lib == winner else 2.0) for lib in product_table.LIBRARIES}
    return measure, calls


@given(rows=st.integers(1, 100_000))
def test_rows_are_measured_at_the_next_power_of_two(rows):
    measured = measured_rows(rows)
    assert measured & (measured - 1) == 0
    assert measured == product_table.MAX_MEASURED_ROWS or measured // 2 < rows <= measured


def test_the_faster_library_is_chosen_kept_and_read_back(tmp_path, monkeypatch):
    """Each product gets the faster library, measured once per key; a later process reads the
    table and measures nothing."""
    measure, calls = _timings({"forward": "torch", "input_gradient": "onednn",
                               "weight_gradient": "onednn"})
    monkeypatch.setattr(product_table, "measure", measure)
    path = tmp_path / "cache" / "table.json"
    plan = MeasuredPlan(path)
    weight = torch.empty(5, 40)
    assert plan.library("forward", 60, weight) == "torch"
    assert plan.library("forward", 64, weight) == "torch"  # same power of two: not measured
    assert plan.library("input_gradient", 60, weight) == "onednn"
    assert plan.library("forward", 65, weight) == "torch"  # 128 rows: measured
    assert [call[0] for call in calls] == ["forward", "input_gradient", "forward"]
    table = json.loads(path.read_text())
    assert table["choices"][product_key("forward", 60, (5, 40), torch.get_num_threads())] == "torch"
    monkeypatch.setattr(product_table, "measure", lambda *a: pytest.fail("measured again"))
    again = MeasuredPlan(path)
    assert again.library("input_gradient", 33, weight) == "onednn"


@pytest.mark.parametrize("text", [
    "not json", "[1, 2]", '{"format": 1}',
    None,  # a table of another CPU or torch
    "bad values",  # a table of this machine whose values are not libraries
])
def test_a_table_we_cannot_trust_is_measured_again(tmp_path, monkeypatch, text):
    path = tmp_path / "table.json"
    key = product_key("forward", 8, (5, 40), torch.get_num_threads())
    if text is None:
        text = json.dumps({"format": 1, "machine": "another", "choices": {key: "torch"}})
    elif text == "bad values":
        text = json.dumps({"format": 1, "machine": product_table._machine_key(),
                           "choices": {key: "rm -rf /", "forward rows=2": ["torch"]}})
    path.write_text(text)
    measure, calls = _timings({"forward": "onednn"})
    monkeypatch.setattr(product_table, "measure", measure)
    assert MeasuredPlan(path).library("forward", 8, torch.empty(5, 40)) == "onednn"
    assert len(calls) == 1
    assert json.loads(path.read_text())["choices"] == {key: "onednn"}


def test_a_table_that_cannot_be_written_is_said_once(tmp_path, monkeypatch, caplog):
    measure, calls = _timings({"forward": "torch"})
    monkeypatch.setattr(product_table, "measure", measure)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    plan = MeasuredPlan(blocker / "table.json")  # its folder is a file
    with caplog.at_level("WARNING", logger=product_table.__name__):
        for rows in (1, 2, 4):
            assert plan.library("forward", rows, torch.empty(3, 3)) == "torch"
    assert caplog.text.count("cannot be kept") == 1
    assert len(calls) == 3


@needs_onednn
def test_measuring_times_both_libraries_on_the_shape():
    seconds = product_table.measure("weight_gradient", 3, (5, 40))
    assert set(seconds) == {"torch", "onednn"} and all(s > 0 for s in seconds.values())


@needs_onednn
def test_a_planned_layer_runs_each_product_where_its_plan_says(tmp_path, monkeypatch):
    """Forward on torch's product, both gradients on oneDNN, as measured; values and
    gradients as nn.Linear's to float32 rounding."""
    measure, _ = _timings({"forward": "torch", "input_gradient": "onednn",
                           "weight_gradient": "onednn"})
    monkeypatch.setattr(product_table, "measure", measure)
    torch.manual_seed(0)
    reference = torch.nn.Linear(40, 5)
    layer = PlannedLinear(40, 5)
    layer.load_state_dict(reference.state_dict())
    layer.plan = MeasuredPlan(tmp_path / "table.json")
    products = []
    real = cpu_matmul._product
    monkeypatch.setattr(cpu_matmul, "_product",
                        lambda x, w, b: products.append(tuple(x.shape)) or real(x, w, b))
    x = torch.randn(6, 40, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    layer(x).square().sum().backward()
    assert products == [(6, 5), (5, 6)]  # input gradient [6, 5] x [5, 40]; weight gradient
    reference(x_ref).square().sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(layer.weight.grad, reference.weight.grad)
