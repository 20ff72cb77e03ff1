"""Bad-input catalogue, feature-cache rows (docs/BAD_INPUTS.md P1-P3): stale or damaged caches.

The packed cache must follow the content of the feature files, not their mtime (`cp -p`, tar
and `rsync -t` restore it), and a damaged entry must be rebuilt with one warning, never
crash and never blame the dataset.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest

from reliability_support import SCENE_FILE, assert_one_line_error
from crosskd.config import data_spec
from crosskd.data import fingerprint, store
from crosskd.data.errors import DataError
from crosskd.data.retrieval import RetrievalData

SCENE = "scene.densenet161.0"


def _scene_values(data: RetrievalData) -> np.ndarray:
    return data.eval.batch(np.arange(len(data.eval.video_ids))).experts[SCENE].numpy()


def _entries(cache, stem="densenet161-avg"):
    return sorted(p for p in cache.glob(f"{stem}-*") if p.is_dir())


def _replace_keeping_size_and_mtime(workspace, change):
    """Rewrite the scene pickle with `change`, same size, and put its old mtime back (cp -p)."""
    path = workspace.feature_root / SCENE_FILE
    before = path.stat()
    workspace.rewrite_pickle(SCENE_FILE, change)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    return path


def _poison(data):
    key = next(k for k, v in data.items() if isinstance(v, np.ndarray))
    data[key] = data[key].copy()
    data[key][0] = np.inf
    return data


def test_p1_same_size_replacement_with_its_mtime_restored_is_not_served_stale(cli, workspace,
                                                                              tmp_path):
    cache = tmp_path / "cache"
    workspace.rewrite_pickle(SCENE_FILE, lambda d: d)  # the layout the replacement will have
    RetrievalData.load(data_spec(workspace.config), cache_dir=cache)
    path = _replace_keeping_size_and_mtime(workspace, _poison)
    result = cli("train", "--config", workspace.config_path, "--cache_dir", cache)
    assert_one_line_error(result, str(path), "NaN/inf")


def test_p1b_fresh_features_after_a_same_size_replacement(workspace, tmp_path):
    cache = tmp_path / "cache"
    workspace.rewrite_pickle(SCENE_FILE, lambda d: d)
    before = _scene_values(RetrievalData.load(data_spec(workspace.config), cache_dir=cache))

    def doubled(data):
        return {k: (v * 2 if isinstance(v, np.ndarray) else v) for k, v in data.items()}

    _replace_keeping_size_and_mtime(workspace, doubled)
    after = _scene_values(RetrievalData.load(data_spec(workspace.config), cache_dir=cache))
    available = before != 0
    np.testing.assert_allclose(after[available], 2 * before[available])


def test_p1c_unchanged_files_are_hashed_once_and_a_chmod_repacks_nothing(workspace, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setattr(fingerprint, "RACY_SECONDS", 0.0)
    cache = tmp_path / "cache"
    RetrievalData.load(data_spec(workspace.config), cache_dir=cache)
    hashed, packed = [], []
    real_digest, real_pack = fingerprint.content_digest, store._pack
    monkeypatch.setattr(fingerprint, "content_digest", lambda p: hashed.append(p) or
                        real_digest(p))
    monkeypatch.setattr(store, "_pack", lambda *a: packed.append(a) or real_pack(*a))
    RetrievalData.load(data_spec(workspace.config), cache_dir=cache)
    assert hashed == [] and packed == [], "an unchanged file was hashed or packed again"
    path = workspace.feature_root / SCENE_FILE
    os.chmod(path, 0o600)  # changes ctime, not the content
    RetrievalData.load(data_spec(workspace.config), cache_dir=cache)
    assert hashed == [path] and packed == []


def _damage(entry, piece):
    """Damage one piece of a packed cache entry the way a crash or a full disk would."""
    name, how = piece.split(":")
    path = entry / name
    if how == "missing":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "garbage":
        path.write_bytes(b"\x00\xff not what was written")
    elif how == "incomplete":
        meta = json.loads(path.read_text())
        del meta["keys"]
        path.write_text(json.dumps(meta))
    elif how == "short":
        meta = json.loads(path.read_text())
        meta["keys"] = meta["keys"][:-1]
        path.write_text(json.dumps(meta))


PIECES = ["index.npz:missing", "index.npz:truncated", "index.npz:garbage", "meta.json:missing",
          "meta.json:garbage", "meta.json:truncated", "meta.json:incomplete", "meta.json:short",
          "values.npy:missing", "values.npy:truncated"]


@pytest.mark.parametrize("piece", PIECES)
def test_p2_damaged_cache_piece_is_rebuilt_with_one_warning(workspace, tmp_path, caplog, piece):
    cache = tmp_path / "cache"
    expected = _scene_values(RetrievalData.load(data_spec(workspace.config), cache_dir=cache))
    (entry,) = _entries(cache)
    _damage(entry, piece)
    with caplog.at_level(logging.WARNING):
        again = _scene_values(RetrievalData.load(data_spec(workspace.config), cache_dir=cache))
    np.testing.assert_array_equal(again, expected)
    # the feature store's warnings (the tiny splits' small-split warning is another matter)
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno >= logging.WARNING and r.name.startswith("crosskd.data.")
                and r.name != "crosskd.data.retrieval"]
    assert len(warnings) == 1 and "damaged" in warnings[0] and "rebuilding" in warnings[0]
    assert str(entry) in warnings[0]
    assert "download" not in warnings[0]
    assert _entries(cache) == [entry] and not list(cache.glob(".damaged-*"))


def test_p3_damaged_cache_does_not_stop_training(cli, workspace, tmp_path):
    cache = tmp_path / "cache"
    RetrievalData.load(data_spec(workspace.config), cache_dir=cache)
    (entry,) = _entries(cache)
    _damage(entry, "index.npz:truncated")
    _damage(entry, "meta.json:garbage")
    result = cli("train", "--config", workspace.config_path, "--cache_dir", cache)
    assert result.status == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr


def test_p3b_damaged_fingerprint_record_is_ignored(workspace, tmp_path, monkeypatch):
    monkeypatch.setattr(fingerprint, "RACY_SECONDS", 0.0)
    cache = tmp_path / "cache"
    expected = _scene_values(RetrievalData.load(data_spec(workspace.config), cache_dir=cache))
    for record in (cache / fingerprint.RECORDS).iterdir():
        record.write_text("not a digest")
    again = _scene_values(RetrievalData.load(data_spec(workspace.config), cache_dir=cache))
    np.testing.assert_array_equal(again, expected)


def test_p4_cache_folder_that_is_a_file(cli, workspace, tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder", encoding="utf-8")
    line = assert_one_line_error(cli("train", "--config", workspace.config_path,
                                     "--cache_dir", blocker / "packed"), str(blocker),
                                 "part of the path is a file", "--cache_dir")
    assert "download" not in line
    assert blocker.read_text(encoding="utf-8") == "not a folder"



def test_p5_a_feature_file_that_cannot_be_read_is_named(tmp_path):
    """The hash reads the whole file first: a read error names the file (a folder stands in
    for an unreadable file, since the tests run as root)."""
    folder = tmp_path / "densenet161-avg.pickle"
    folder.mkdir()
    with pytest.raises(DataError, match="cannot read .*densenet161-avg.pickle"):
        fingerprint.fingerprint(folder, tmp_path / "cache")
