"""The legacy-format reader gives what torch.load gives, with storages mapped from the file."""

from __future__ import annotations

import collections
import pickle
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from crosskd.checkpoint import legacy
from crosskd.checkpoint.paging import release_pages
from crosskd.safe_pickle import CONTAINER_GLOBALS, CorruptPickleError, UnsafePickleError

DTYPES = list(legacy.STORAGE_DTYPES.values())


def _save(obj: object, path: Path) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=False)
    return path


@st.composite
def payloads(draw) -> dict:
    """Tensors of every storage type and shape (empty ones too), with views that share a
    storage: a transpose, a slice at an offset, and a tensor saved twice."""
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    tensors = {}
    for index in range(draw(st.integers(1, 4))):
        dtype = draw(st.sampled_from(DTYPES))
        shape = draw(st.lists(st.integers(0, 5), min_size=0, max_size=3))
        values = torch.randn(shape, generator=generator) * 50
        tensors[f"t{index}"] = (values > 0) if dtype == torch.bool else values.to(dtype)
    base = torch.randn(6, 4, generator=generator)
    views = {"base": base, "transposed": base.t(), "rows": base[2:5], "again": base}
    return {"tensors": tensors, "views": views, "plain": [1, 2.5, "text", None],
            "ordered": collections.OrderedDict(a=torch.arange(3))}


@settings(max_examples=25, deadline=None)
@given(payloads())
def test_reads_what_torch_load_reads_with_storages_shared(payload):
    with tempfile.TemporaryDirectory() as folder:
        path = _save(payload, Path(folder) / "model.pth")
        ours = legacy.load_legacy(path, CONTAINER_GLOBALS)
        theirs = torch.load(path, weights_only=True)
        for name, tensor in theirs["tensors"].items():
            assert ours["tensors"][name].dtype == tensor.dtype
            assert torch.equal(ours["tensors"][name], tensor)
        for name, tensor in theirs["views"].items():
            assert torch.equal(ours["views"][name], tensor)
            assert ours["views"][name].stride() == tensor.stride()
        storage = ours["views"]["base"].untyped_storage().data_ptr()
        assert all(view.untyped_storage().data_ptr() == storage
                   for view in ours["views"].values())
        assert ours["plain"] == theirs["plain"]
        assert isinstance(ours["ordered"], collections.OrderedDict)
        assert torch.equal(ours["ordered"]["a"], theirs["ordered"]["a"])


def test_storages_are_file_pages_and_writes_stay_private(tmp_path):
    weight = torch.randn(2**20)
    path = _save({"weight": weight}, tmp_path / "model.pth")
    loaded = legacy.load_legacy(path, CONTAINER_GLOBALS)["weight"]
    assert torch.equal(loaded, weight)
    assert release_pages(loaded)  # unmodified pages of the file, so they can be dropped
    loaded.zero_()
    assert torch.equal(torch.load(path, weights_only=True)["weight"], weight)


def test_only_legacy_files_are_recognised(tmp_path):
    assert legacy.is_legacy_file(_save({"w": torch.ones(2)}, tmp_path / "old.pth"))
    torch.save({"w": torch.ones(2)}, tmp_path / "zip.pth")
    assert not legacy.is_legacy_file(tmp_path / "zip.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    assert not legacy.is_legacy_file(tmp_path / "text.pth")


def test_a_truncated_file_is_refused_before_mapping(tmp_path):
    path = _save({"w": torch.randn(1000)}, tmp_path / "model.pth")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CorruptPickleError, match="truncated"):
        legacy.load_legacy(path, CONTAINER_GLOBALS)


def test_a_tensor_reaching_past_its_storage_is_refused(tmp_path):
    path = _save({"w": torch.randn(4, 4)}, tmp_path / "model.pth")
    data = path.read_bytes()  # the shape (4, 4) as BININT1 opcodes, made (4, 40)
    forged = data.replace(b"K\x04K\x04\x86q", b"K\x04K(\x86q", 1)
    assert forged != data
    path.write_bytes(forged)
    with pytest.raises(CorruptPickleError, match="RuntimeError"):
        legacy.load_legacy(path, CONTAINER_GLOBALS)


class _StorageViewPickler(pickle.Pickler):
    """Writes a tensor's storage as torch before 1.0 could: as a view of another storage."""

    def persistent_id(self, obj: object) -> object:
        if torch.is_storage(obj):
            return ("storage", torch.FloatStorage, "0", "cpu", 4, ("1", 0, 4))
        return None


def test_storage_views_and_unknown_globals_are_refused(tmp_path):
    path = tmp_path / "model.pth"
    with open(path, "wb") as handle:
        for header in (legacy.MAGIC_NUMBER, legacy.PROTOCOL_VERSION, {"little_endian": True}):
            pickle.dump(header, handle, protocol=2)
        _StorageViewPickler(handle, protocol=2).dump({"w": torch.ones(4)})
    with pytest.raises(UnsafePickleError, match="persistent id"):
        legacy.load_legacy(path, CONTAINER_GLOBALS)
    _save({"w": torch.ones(2), "o": collections.Counter()}, path)
    with pytest.raises(UnsafePickleError, match="collections.Counter"):
        legacy.load_legacy(path, CONTAINER_GLOBALS)
