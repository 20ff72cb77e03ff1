"""Batch.map_tensors / tensors visit every tensor once, in one order (CUDA graphs rely on it)."""

from __future__ import annotations

import torch

from crosskd.data.batch import Batch
from crosskd.tree import structure


def _batch(rows: int = 4, teachers: bool = True) -> Batch:
    def tensor(*shape):
        return torch.randn(rows, *shape)
    distil = ({0: {"audio": tensor(3)}}, {0: {"audio": tensor(1, 3)}}) if teachers else (None,
                                                                                         None)
    return Batch(experts={"audio": tensor(5, 2), "scene": tensor(6)},
                 ind={"audio": tensor(), "scene": tensor()}, text=tensor(1, 7, 8),
                 text_token_mask=tensor(1, 7), distil_video=distil[0], distil_text=distil[1],
                 video_ids=[f"v{i}" for i in range(rows)])


def test_tensors_lists_every_tensor_in_map_order():
    batch = _batch()
    tensors = batch.tensors()
    assert len(tensors) == 8 and len({id(t) for t in tensors}) == 8
    doubled = batch.map_tensors(lambda t: t * 2)
    for original, mapped in zip(tensors, doubled.tensors(), strict=True):
        torch.testing.assert_close(mapped, original * 2)
    assert doubled.video_ids == batch.video_ids and doubled.query_masks is None
    assert all(a is b for a, b in zip(batch.to("cpu").tensors(), tensors))


def test_graph_signatures_tell_shapes_and_inputs_apart():
    def signature(batch: Batch) -> tuple:
        return structure(batch)

    assert signature(_batch()) == signature(_batch())
    assert signature(_batch(rows=3)) != signature(_batch())
    assert signature(_batch(teachers=False)) != signature(_batch())
