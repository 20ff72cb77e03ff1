"""`crosskd cache list | clean`, and the entries of a changed source pruned when it is packed again."""

from __future__ import annotations

import numpy as np
import pytest

from crosskd.cli import main
from crosskd.data import fingerprint
from crosskd.data.cache import CHANGED, CURRENT, MISSING, list_entries
from crosskd.data.picklewriter import write_pickle
from crosskd.data.store import load_packed


def _source(path, scale):
    write_pickle(path, {f"video{i}": np.full((2, 3), scale * i, np.float32) for i in range(4)})
    return path


@pytest.fixture(autouse=True)
def _record_fresh_files(monkeypatch):
    """The sources are seconds old: record their fingerprints anyway."""
    monkeypatch.setattr(fingerprint, "RACY_SECONDS", 0.0)


@pytest.fixture
def kept_and_gone(tmp_path):
    """A cache with the entry of an existing source and that of a deleted one."""
    cache = tmp_path / "cache"
    kept, gone = _source(tmp_path / "kept.pkl", 1.0), _source(tmp_path / "gone.pkl", 2.0)
    load_packed(kept, "expert", cache)
    load_packed(gone, "expert", cache)
    gone.unlink()
    return cache, kept, gone


def test_list_shows_each_entry_with_its_source_and_state(kept_and_gone, capsys):
    cache, kept, gone = kept_and_gone
    assert main(["cache", "list", "--cache-dir", str(cache)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(CURRENT in line and str(kept) in line for line in lines)
    assert any(MISSING in line and str(gone) in line for line in lines)
    assert lines[-1].startswith("2 entries,") and "1 stale" in lines[-1]


def test_a_changed_source_is_listed_stale_then_pruned_when_packed_again(tmp_path):
    cache = tmp_path / "cache"
    source = _source(tmp_path / "scene.pkl", 1.0)
    first = load_packed(source, "expert", cache)
    load_packed(source, "expert", cache, dtype="float16")  # other options: kept beside it
    _source(source, 3.0)
    assert {entry.state for entry in list_entries(cache)} == {CHANGED}
    again = load_packed(source, "expert", cache)
    entries = list_entries(cache)
    assert [entry.state for entry in entries] == [CURRENT]
    assert float(again.values[-1, 0]) == 9.0 != float(first.values[-1, 0])


def test_clean_stale_keeps_current_entries_and_clean_removes_all(kept_and_gone, capsys):
    cache, kept, _ = kept_and_gone
    assert main(["cache", "clean", "--stale", "--cache_dir", str(cache)]) == 0
    assert "removed 1 stale entries" in capsys.readouterr().out
    assert [entry.source for entry in list_entries(cache)] == [kept.resolve()]
    assert main(["cache", "clean", "--cache_dir", str(cache)]) == 0
    assert list_entries(cache) == [] and not (cache / fingerprint.RECORDS).exists()
