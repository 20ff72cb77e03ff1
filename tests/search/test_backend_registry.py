"""The search-backend registry (crosskd.search.backends): every entry builds, saves, reopens
and answers with exact scores, and the command line's backend flags come from the entries,
so a backend added to the registry is offered by `crosskd index`, `search` and `serve` with
nothing else changed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli_runs import search_json
from crosskd.cli import main
from crosskd.errors import UserError
from crosskd.search import Index, Query
from crosskd.search.backends import BACKENDS, BackendOption, ExactBackend


def _unit_collection(videos: int, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Ids, unit embeddings `[V, 3, 8]` and an availability with two patterns."""
    rng = np.random.default_rng(seed)
    embeddings = rng.standard_normal((videos, 3, 8)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=2, keepdims=True)
    availability = np.ones((videos, 3), np.float32)
    availability[::3, 2] = 0
    return [f"v{i}" for i in range(videos)], embeddings, availability


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_declares_a_name_a_line_and_options_within_their_range(name):
    backend = BACKENDS[name]
    assert backend.name == name and backend.description and "\n" not in backend.description
    options = backend.build_options + backend.search_options
    assert len({option.name for option in options}) == len(options)
    for option in options:
        assert option.default is not None or option.none_means
        assert option.default is None or option.low <= option.default <= (
            option.high or option.default)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_reopens_and_returns_exact_scores(tmp_path, name):
    needs = BACKENDS[name].needs
    if needs is not None and not needs.installed():
        pytest.skip(f"the {name} backend needs {needs.module}")
    ids, embeddings, availability = _unit_collection(900)
    exact = Index.from_embeddings(ids, "abc", [8] * 3, embeddings, availability)
    Index.from_embeddings(ids, "abc", [8] * 3, embeddings, availability, backend=name,
                          approximate_from=0).save(tmp_path / "index")
    reopened = Index.load(tmp_path / "index")
    assert {group.backend.name for group in reopened.groups} == {name}
    rng = np.random.default_rng(1)
    for _ in range(5):
        text = rng.standard_normal((3, 8)).astype(np.float32)
        query = Query(text / np.linalg.norm(text, axis=1, keepdims=True),
                      np.full(3, 1 / 3, np.float32))
        truth = {hit.item_id: hit.score for hit in exact.search(query, len(ids))}
        hits = reopened.search(query, 10)
        assert len(hits) == 10
        for hit in hits:
            assert hit.score == pytest.approx(truth[hit.item_id], abs=1e-5)


class _ToyBackend(ExactBackend):
    """A backend as a contributor would add one: a class and a registry entry. It scans
    exactly and records the options it was given."""

    name = "toy"
    description = "a scan that records its options"
    build_options = (BackendOption("toy_level", "how toy the index is", 3, high=9),)
    search_options = (BackendOption("toy_reach", "how far a toy search looks", 5),)
    calls: list[tuple[str, dict]] = []

    @classmethod
    def build(cls, vectors, column, **settings):
        cls.calls.append(("build", settings))
        return cls(vectors, column=column)

    @classmethod
    def load(cls, folder, stem, vectors, column, **settings):
        cls.calls.append(("load", settings))
        return cls(vectors, column=column)


@pytest.fixture
def toy_backend(monkeypatch):
    monkeypatch.setitem(BACKENDS, _ToyBackend.name, _ToyBackend)
    monkeypatch.setattr(_ToyBackend, "calls", [])
    return _ToyBackend


def test_a_registered_backend_is_offered_by_index_search_and_serve(
        tmp_path, tiny_collection, capsys, toy_backend):
    index_help = _help("index", capsys)
    assert "toy: a scan that records its options" in index_help
    assert ("--toy-level TOY_LEVEL, --toy_level TOY_LEVEL how toy the index is (toy; "
            "default: 3)") in index_help
    for command in ("search", "serve"):
        assert ("--toy-reach TOY_REACH, --toy_reach TOY_REACH how far a toy search looks "
                "(toy; default: 5)") in _help(command, capsys)

    folder, _, checkpoint, _ = tiny_collection
    out, exact_index = tmp_path / "index", tmp_path / "exact"
    for backend, folder_out in (("exact", exact_index), ("toy", out)):
        # both through the command, so both embed on the same CPU linear library
        assert main(["index", "--checkpoint", str(checkpoint), "--config",
                     str(folder / "config.json"), "--out", str(folder_out), "--backend",
                     backend, *(["--toy-level", "7"] if backend == "toy" else [])]) == 0
    capsys.readouterr()
    assert json.loads((out / "manifest.json").read_text())["backend"] == "toy"
    patterns = len(Index.load(exact_index).groups)
    assert toy_backend.calls == [("build", {"toy_level": 7, "toy_reach": 5})] * patterns
    toy_backend.calls.clear()
    answer = search_json(capsys, out, "--caption", "video34:0", "-k", "4", "--toy-reach", "2")
    assert toy_backend.calls == [("load", {"toy_reach": 2})] * patterns
    exact = search_json(capsys, exact_index, "--caption", "video34:0", "-k", "4")
    assert answer["results"] == exact["results"]


def _help(command: str, capsys) -> str:
    """`crosskd COMMAND --help`, its white space collapsed."""
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_a_registered_backends_flag_is_refused_with_another_backend(
        tmp_path, tiny_collection, capsys, toy_backend):
    folder, _, checkpoint, _ = tiny_collection
    assert main(["index", "--checkpoint", str(checkpoint), "--config",
                 str(folder / "config.json"), "--out", str(tmp_path / "index"),
                 "--toy-level", "2"]) == 2
    assert capsys.readouterr().err.strip().endswith("--toy-level only applies to --backend toy")
    assert toy_backend.calls == []


def test_serve_passes_its_search_flags_to_the_index(tiny_collection, monkeypatch):
    import uvicorn

    from crosskd.search.index import Index as served_index
    opened = []
    original = served_index.load
    monkeypatch.setattr(served_index, "load",
                        lambda root, **options: opened.append(options) or original(root,
                                                                                   **options))
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: None)
    index = str(tiny_collection[3])
    assert main(["serve", index, "--candidates", "7"]) == 0
    assert main(["serve", index]) == 0
    assert opened == [{"candidates": 7}, {}]


@pytest.mark.parametrize("options, message", [
    ({"nprobe": 3}, "the exact backend takes no option nprobe (it takes none)"),
    ({"backend": "toy", "toy_level": 10},
     "the toy backend's option toy_level: 10 is out of range; use a whole number from 1 to 9"),
    ({"backend": "toy", "toy_level": 2.0},
     "the toy backend's option toy_level must be a whole number, not 2.0"),
    ({"backend": "toy", "toy_reach": True},
     "the toy backend's option toy_reach must be a whole number, not True"),
])
def test_library_options_are_checked_against_the_declarations(options, message, toy_backend):
    ids, embeddings, availability = _unit_collection(30)
    with pytest.raises(UserError) as refused:
        Index.from_embeddings(ids, "abc", [8] * 3, embeddings, availability, **options)
    assert str(refused.value) == message


def test_a_search_option_no_backend_takes_is_refused(tiny_collection):
    with pytest.raises(UserError, match="no search backend takes option candidatse"):
        Index.load(tiny_collection[3], candidatse=3)
    assert Index.load(tiny_collection[3], candidates=3).groups  # exact: taken, ignored
