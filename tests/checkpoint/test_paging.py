"""Releasing a memory-mapped checkpoint's weight pages after use keeps every value intact."""

from __future__ import annotations

import mmap

import pytest
import torch
from torch import nn

from crosskd.checkpoint.original import load_original_checkpoint
from crosskd.checkpoint.paging import (release_pages, release_weights_after_use,
                                       resident_pages, supported)

pytestmark = pytest.mark.skipif(not supported(), reason="needs /proc/self/pagemap (Linux)")

#: several pages' worth of float32 values, so a page count says something.
ELEMENTS = 64 * mmap.PAGESIZE // 4


def _mapped(tmp_path, value: object) -> object:
    """`value` written with torch.save and read back memory-mapped, as `crosskd test` reads."""
    path = tmp_path / "saved.pth"
    torch.save(value, path)
    return torch.load(path, mmap=True, weights_only=True)


def test_released_pages_come_back_with_the_same_values(tmp_path):
    original = torch.randn(ELEMENTS)
    mapped = _mapped(tmp_path, original)
    assert torch.equal(mapped, original)
    assert resident_pages(mapped) >= 64
    assert release_pages(mapped)
    assert resident_pages(mapped) == 0
    assert torch.equal(mapped, original)


def test_a_weight_changed_in_place_is_never_released(tmp_path):
    mapped = _mapped(tmp_path, torch.zeros(ELEMENTS))
    assert float(mapped.sum()) == 0.0  # every page read
    mapped[ELEMENTS // 2] = 7.0
    assert not release_pages(mapped)
    assert mapped[ELEMENTS // 2] == 7.0 and resident_pages(mapped) >= 64


def test_ordinary_memory_is_never_released():
    tensor = torch.randn(ELEMENTS)
    copy = tensor.clone()
    assert not release_pages(tensor)
    assert torch.equal(tensor, copy)


def test_modules_release_their_weights_after_gradient_free_forwards_only(tmp_path):
    torch.manual_seed(0)
    layer = nn.Linear(ELEMENTS // 256, 256)
    model = nn.Sequential(layer, nn.ReLU())
    expected = model(torch.ones(2, ELEMENTS // 256)).detach()
    model.load_state_dict(_mapped(tmp_path, model.state_dict()), assign=True)
    assert release_weights_after_use(model, min_bytes=layer.weight.nbytes) == [layer.weight]
    x = torch.ones(2, ELEMENTS // 256)
    assert torch.equal(model(x), expected)  # with gradients: nothing released
    assert resident_pages(layer.weight) > 0
    with torch.inference_mode():
        assert torch.equal(model(x), expected)
    assert resident_pages(layer.weight) == 0
    with torch.inference_mode():
        assert torch.equal(model(x), expected)


@pytest.mark.parametrize("variant", ["trained_model", "trained_model_legacy_format"])
def test_original_checkpoints_are_mapped_so_their_weights_can_be_released(conformance,
                                                                          variant):
    path = conformance / "checkpoints" / f"msrvtt-mini-cecap_seed0_{variant}.pth"
    state = load_original_checkpoint(path).state_dict
    weight = max(state.values(), key=lambda tensor: tensor.nbytes)
    expected = weight.clone()
    assert release_pages(weight)
    assert torch.equal(weight, expected)
