"""One tree walker for batches, checkpoint states and feature stores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from crosskd.tree import leaves, map_leaves, structure


@dataclass
class _Node:
    values: dict
    names: list
    extra: tuple = ()


def _tree() -> _Node:
    return _Node({"b": torch.ones(2), "a": [torch.zeros(3), None, 4]}, ["x", "y"],
                 (torch.arange(2),))


def test_leaves_come_in_map_order_and_other_values_stay():
    tree = _tree()
    found = list(leaves(tree))
    assert [t.shape for t in found] == [(2,), (3,), (2,)]
    doubled = map_leaves(lambda t: t + 1, tree)
    assert isinstance(doubled, _Node) and doubled.names == ["x", "y"]
    assert doubled.values["a"][1] is None and doubled.values["a"][2] == 4
    for before, after in zip(found, leaves(doubled), strict=True):
        torch.testing.assert_close(after, before + 1)


def test_structures_differ_exactly_when_keys_shapes_or_dtypes_do():
    assert structure(_tree()) == structure(_tree())
    other = _tree()
    other.values["b"] = torch.ones(3)
    assert structure(other) != structure(_tree())
    other = _tree()
    other.values["b"] = torch.ones(2, dtype=torch.float64)
    assert structure(other) != structure(_tree())
    other = _tree()
    other.values = {"c": other.values["b"], "a": other.values["a"]}
    assert structure(other) != structure(_tree())


def test_other_leaf_types(tmp_path):
    mapped = np.memmap(tmp_path / "a.bin", dtype=np.float32, mode="w+", shape=(4,))
    tree = _Node({"m": mapped, "plain": np.zeros(2)}, ["x"])
    assert [id(a) for a in leaves(tree, np.memmap)] == [id(mapped)]
