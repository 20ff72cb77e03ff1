"""An index folder is a file we did not write: damaged, it must end in a UserError (or search
as before), never in a traceback from deep inside a search. Also: a search over read-only
memory maps raises no warning, and the report's chunked ranks equal the whole matrix's."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crosskd.errors import UserError
from crosskd.qbnorm import MAX_BETA
from crosskd.search.backends import exact as exact_backend
from crosskd.search.answers import answer, query_of
from crosskd.search.captions import MAX_READ, CaptionStore
from crosskd.search.index import Index
from crosskd.search.report import summary

#: every file a saved index of the tiny collection holds (float32, exact, with a text model)
FILES = ["manifest.json", "availability.npy", "digests.npy", "groups/g0.npy",
         "groups/g0.members.npy",
         "groups/g1.npy", "groups/g1.members.npy", "groups/g2.npy", "groups/g2.members.npy",
         "groups/g3.npy", "groups/g3.members.npy", "captions/embeddings.npy",
         "captions/weights.npy", "captions/owner.npy", "captions/slot.npy",
         "captions/texts.json", "text.json", "text_model.pt"]
QUERY = "video34:0"


def _search(root: Path) -> list[tuple[str, float]]:
    """Open the index and run one caption query, as `crosskd search` does."""
    index = Index.load(root)
    return [(hit["video_id"], hit["score"])
            for hit in answer(index, query_of(index, caption=QUERY), 5)["results"]]


def _outcome(root: Path) -> Any:
    """The search's answer, or the UserError it ended in; any other exception fails."""
    try:
        return _search(root)
    except UserError as err:
        assert "\n" not in str(err)
        return err


def _truncate_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(max(64, path.stat().st_size)))


def _delete(path: Path) -> None:
    path.unlink()


def _other_content(path: Path) -> None:
    """A well-formed file of the same kind holding something else."""
    if path.suffix == ".npy":
        path.unlink()
        np.save(path, np.arange(3, dtype=np.float64))
    elif path.suffix == ".json":
        path.write_text("[1, 2]")
    else:
        torch.save({"unrelated.weight": torch.zeros(2)}, path)


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


DAMAGES: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate_half, "empty": _empty, "garbage": _garbage, "deleted": _delete,
    "other content": _other_content, "a folder": _folder}


@pytest.fixture
def pristine(tiny_collection) -> tuple[Path, list]:
    _, _, _, root = tiny_collection
    return root, _search(root)


def test_the_fuzzed_files_are_every_file_of_an_index(pristine):
    root, _ = pristine
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == \
        sorted(FILES)


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("name", FILES)
def test_a_damaged_file_is_a_user_error_or_the_same_answer(pristine, tmp_path, name, damage):
    root, expected = pristine
    copy = tmp_path / "index"
    shutil.copytree(root, copy)
    DAMAGES[damage](copy / name)
    outcome = _outcome(copy)
    if isinstance(outcome, UserError):
        assert name.split("/")[-1] in str(outcome) or "not a search index" in str(outcome)
    else:  # only the optional text model and digests may go without changing an answer
        assert (name, damage) in {("text_model.pt", "deleted"), ("digests.npy", "deleted")}
        assert outcome == expected


#: manifest fields (a path of keys and list positions) edited by the tests below
FIELDS = [("format",), ("version",), ("modalities",), ("modalities", 0), ("dims",), ("dims", 0),
          ("dtype",), ("backend",), ("video_ids",), ("video_ids", 0), ("patterns",),
          ("patterns", 0), ("patterns", 0, "availability"), ("patterns", 0, "availability", 0),
          ("patterns", 0, "videos"), ("patterns", 3, "videos"), ("info",)]
WRONG = [None, "x", "", -1, 0, 1, 7, 1.5, True, [], {}, 10 ** 30, float("nan"), float("inf"),
         [1.0] * 7, {"availability": [1.0] * 7, "videos": 8}]


def _edited(root: Path, tmp_path: Path, path: tuple, value: Any) -> tuple[Path, bool]:
    """A copy of the index with one manifest field set to `value`; whether that changed it."""
    copy = tmp_path / "index"
    shutil.copytree(root, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    holder = manifest
    for key in path[:-1]:
        holder = holder[key]
    old = holder[path[-1]]
    changed = not (old == value and isinstance(old, bool) == isinstance(value, bool))
    holder[path[-1]] = value
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy, changed


@pytest.mark.parametrize("value", WRONG, ids=repr)
@pytest.mark.parametrize("path", FIELDS, ids=lambda p: ".".join(map(str, p)))
def test_a_manifest_field_of_the_wrong_type_or_value(pristine, tmp_path, path, value):
    root, expected = pristine
    copy, changed = _edited(root, tmp_path, path, value)
    outcome = _outcome(copy)
    if not isinstance(outcome, UserError):
        # the edits that leave a consistent index: renamed video or expert, other info
        assert path in {("video_ids", 0), ("modalities", 0), ("info",)} or not changed
        assert outcome == expected
    else:
        assert str(copy) in str(outcome) and "rebuild it with crosskd index" in str(outcome)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=8)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(FIELDS), value=_json)
def test_any_json_in_a_manifest_field_opens_or_is_refused(pristine, tmp_path_factory, path,
                                                          value):
    root, _ = pristine
    outcome = _outcome(_edited(root, tmp_path_factory.mktemp("fuzz"), path, value)[0])
    if not isinstance(outcome, UserError):
        assert len(outcome) == 5 and all(np.isfinite(score) for _, score in outcome)


#: the files an index built with --qbnorm holds beside FILES
QBNORM_FILES = ["qbnorm/log_normaliser.npy", "qbnorm/active.npy"]
#: its manifest's QB-Norm fields
QBNORM_FIELDS = [("qbnorm",), ("qbnorm", "beta"), ("qbnorm", "bank_size")]


@pytest.fixture
def pristine_qbnorm(tiny_qbnorm_index) -> tuple[Path, list]:
    root, _ = tiny_qbnorm_index
    return root, _search(root)


def test_the_fuzzed_files_are_every_file_of_a_qbnorm_index(pristine_qbnorm):
    root, _ = pristine_qbnorm
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == \
        sorted(FILES + QBNORM_FILES)


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("name", QBNORM_FILES)
def test_a_damaged_qbnorm_file_is_a_user_error(pristine_qbnorm, tmp_path, name, damage):
    root, _ = pristine_qbnorm
    copy = tmp_path / "index"
    shutil.copytree(root, copy)
    DAMAGES[damage](copy / name)
    outcome = _outcome(copy)
    assert isinstance(outcome, UserError) and name.split("/")[-1] in str(outcome)


def _consistent_qbnorm_edit(path: tuple, value: Any) -> bool:
    """Whether setting a QB-Norm manifest field to `value` leaves a usable index: null turns
    QB-Norm off; a beta in (0, MAX_BETA] or a bank size >= 1 is a different but valid setting."""
    if path == ("qbnorm",):
        return value is None
    if path[-1] == "beta":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and \
            0 < value <= MAX_BETA
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@pytest.mark.parametrize("value", WRONG, ids=repr)
@pytest.mark.parametrize("path", QBNORM_FIELDS, ids=lambda p: ".".join(map(str, p)))
def test_a_qbnorm_manifest_field_of_the_wrong_type_or_value(pristine_qbnorm, tmp_path, path,
                                                            value):
    root, _ = pristine_qbnorm
    copy, _ = _edited(root, tmp_path, path, value)
    outcome = _outcome(copy)
    if isinstance(outcome, UserError):
        assert str(copy) in str(outcome) and "rebuild it with crosskd index" in str(outcome)
        assert not _consistent_qbnorm_edit(path, value)
    else:
        assert _consistent_qbnorm_edit(path, value)
        assert len(outcome) == 5 and all(np.isfinite(score) for _, score in outcome)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(QBNORM_FIELDS), value=_json)
def test_any_json_in_a_qbnorm_field_opens_or_is_refused(pristine_qbnorm, tmp_path_factory,
                                                        path, value):
    root, _ = pristine_qbnorm
    outcome = _outcome(_edited(root, tmp_path_factory.mktemp("fuzz"), path, value)[0])
    if not isinstance(outcome, UserError):
        assert len(outcome) == 5 and all(np.isfinite(score) for _, score in outcome)


#: the file an index of a dataset whose experts read or heard text holds beside FILES
READ_FILE = "captions/read.json"
#: read.json contents of the wrong shape
BAD_READ = [[], "x", None, 3, {"nope": {"ocr": "x"}}, {"video34": "x"}, {"video34": ["x"]},
            {"video34": {"ocr": 1}}, {"video34": {"ocr": None}},
            {"video34": {"ocr": "x" * (MAX_READ + 1)}}]


@pytest.fixture
def pristine_read(tiny_read_index) -> tuple[Path, list]:
    root, _ = tiny_read_index
    return root, _search(root)


def _with_read(root: Path, tmp_path: Path, value: Any) -> Path:
    """A copy of the index whose read.json holds `value`."""
    copy = tmp_path / "index"
    shutil.copytree(root, copy)
    (copy / READ_FILE).write_text(json.dumps(value))
    return copy


def test_the_fuzzed_files_are_every_file_of_an_index_with_read_text(pristine_read):
    root, _ = pristine_read
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == \
        sorted(FILES + [READ_FILE])


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_read_file_is_a_user_error_or_the_same_answer(pristine_read, tmp_path,
                                                                damage):
    root, expected = pristine_read
    copy = tmp_path / "index"
    shutil.copytree(root, copy)
    DAMAGES[damage](copy / READ_FILE)
    outcome = _outcome(copy)
    if damage == "deleted":  # optional: an index without it answers as before
        assert outcome == expected
    else:
        assert isinstance(outcome, UserError) and "read.json" in str(outcome)
        assert "rebuild it with crosskd index" in str(outcome)


@pytest.mark.parametrize("value", BAD_READ, ids=lambda v: repr(v)[:40])
def test_read_text_of_the_wrong_shape_is_refused(pristine_read, tmp_path, value):
    outcome = _outcome(_with_read(pristine_read[0], tmp_path, value))
    assert isinstance(outcome, UserError) and "read.json" in str(outcome)


_read_json = _json | st.dictionaries(
    st.sampled_from(["video34", "video46", "nope"]),
    _json | st.dictionaries(st.text(max_size=4), _json | st.text(max_size=8)), max_size=3)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_read_json)
def test_any_json_in_the_read_file_opens_or_is_refused(pristine_read, tmp_path_factory, value):
    copy = _with_read(pristine_read[0], tmp_path_factory.mktemp("fuzz"), value)
    try:
        index = Index.load(copy)
    except UserError as err:
        assert "\n" not in str(err) and "read.json" in str(err)
        return
    hits = answer(index, query_of(index, caption=QUERY), 5)["results"]
    assert [(hit["video_id"], hit["score"]) for hit in hits] == pristine_read[1]
    assert all(isinstance(text, str) for hit in hits for text in hit.get("read", {}).values())


def test_a_search_over_read_only_maps_warns_nothing(tiny_collection, monkeypatch):
    """torch.from_numpy warns about every non-writable array; the torch scan (used without
    faiss, and for float16 / int8) must wrap the mapped vectors without that warning."""
    monkeypatch.setattr(exact_backend, "faiss_module", lambda: None)
    _, _, _, root = tiny_collection
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        index = Index.load(root)
        assert answer(index, query_of(index, caption=QUERY), 3)["results"]


def _tied_index(root: Path) -> Index:
    """8 videos in 3 patterns, two pairs of them identical; 14 captions. Every value is a
    multiple of 1/4 and every weight 1/4 or 1/2, so each numerator is exact in float32 and
    equal embeddings give equal scores: ties, including with a caption's own video."""
    rng = np.random.default_rng(3)
    videos = rng.integers(-2, 3, (8, 3, 4)).astype(np.float32) / 4
    videos[5], videos[6] = videos[2], videos[3]
    availability = np.ones((8, 3), np.float32)
    availability[[1, 4], 2] = 0
    availability[7, 0] = 0
    index = Index.from_embeddings([f"v{i}" for i in range(8)], ["a", "b", "c"], [4, 4, 2],
                                  videos, availability)
    texts = rng.integers(-2, 3, (14, 3, 4)).astype(np.float32) / 4
    texts[:, 2, 2:] = 0
    texts[0] = videos[2]
    weights = np.tile(np.array([0.25, 0.25, 0.5], np.float32), (14, 1))
    weights[::3] = np.array([0.5, 0.25, 0.25], np.float32)
    owner = np.array([2, 5, 3, 6, 0, 1, 4, 7, 2, 5, 3, 6, 0, 1])
    slot = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    index.captions = CaptionStore(texts, weights, owner, slot)
    index.save(root)
    return Index.load(root)


def _whole_matrix_figures(index: Index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ranks and top videos as the report computed them before chunking: the whole score
    matrix, 1 + the count of higher scores, a stable argsort."""
    videos = np.zeros((len(index), len(index.modalities), max(index.dims)), np.float32)
    for group in index.groups:
        for e, block in zip(group.slices.experts, group.slices.split(group.vectors.decode())):
            videos[group.pattern.members, e, :block.shape[1]] = block
    captions = index.captions
    weighted = np.asarray(captions.embeddings) * np.asarray(captions.weights)[..., None]
    scores = weighted.reshape(len(captions), -1) @ videos.reshape(len(index), -1).T / \
        (np.asarray(captions.weights) @ index.availability.T)
    own = scores[np.arange(len(scores)), captions.owner]
    return (1 + (scores > own[:, None]).sum(axis=1), np.argsort(-scores, 1, kind="stable")[:, :5],
            (scores == own[:, None]).sum(axis=1))


@pytest.mark.parametrize("chunk", [1, 3, 5, 14, None])
def test_report_figures_in_chunks_equal_the_whole_matrix(tmp_path, chunk):
    index = _tied_index(tmp_path / "tied")
    ranks, top, tied = _whole_matrix_figures(index)
    assert (tied > 1).sum() >= 4  # captions whose own video ties with another
    facts = summary(index, chunk)
    np.testing.assert_array_equal(facts["ranks"], ranks)
    np.testing.assert_array_equal(facts["top"], top)
    assert facts["recall"] == [(k, float((ranks <= k).mean() * 100)) for k in range(1, 9)]
