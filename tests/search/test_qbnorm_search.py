"""QB-Norm in search ranks as evaluation's QB-Norm does: exactly in the exact backend, by the
augmented inner product (then re-ranked) in IVF / HNSW; without a bank nothing changes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from cli_runs import refused_index, search_json
from crosskd.cli import main
from crosskd.config import as_experiment
from crosskd.data.retrieval import RetrievalData
from crosskd.errors import UserError
from crosskd.models import build_model
from crosskd.models.similarity import mixture_inner_products
from crosskd.qbnorm import BankAccumulator, QueryBank
from crosskd.search import Index, Query
from crosskd.search.backends import ExactBackend, faiss_module
from crosskd.search.bank import BankChoice
from crosskd.search.build import index_from_model
from crosskd.inference import scores_and_querybank

from test_exactness import TOLERANCE, collections, random_videos


def model_scores(texts: np.ndarray, weights: np.ndarray, embeddings: np.ndarray,
                 availability: np.ndarray) -> np.ndarray:
    """`[Q, V]` scores by the model's own formula."""
    return mixture_inner_products(torch.from_numpy(texts), torch.from_numpy(weights),
                                  torch.from_numpy(embeddings),
                                  torch.from_numpy(availability)).numpy()


def evaluation_row(bank: QueryBank, raw: np.ndarray) -> tuple[np.ndarray, bool]:
    """A query's row as evaluation ranks it (QueryBank.normalise_in_place), and whether it
    was normalised."""
    row = raw[None].astype(np.float32).copy()
    replaced = bank.normalise_in_place(row)
    return row[0], bool(replaced[0])


def assert_ranks_as(ranking, ids: list[str], raw: np.ndarray, bank: QueryBank, k: int,
                    tolerance: float = TOLERANCE) -> None:
    """`ranking` (Index.rank) holds evaluation's top k of its QB-Norm row `raw`: the same
    decision, raw scores, normalised scores, and order (ids may swap within rounding)."""
    row, normalised = evaluation_row(bank, raw)
    assert ranking.normalised == normalised
    keys = np.log(np.maximum(row, 1e-300)) if normalised else row
    expected = np.lexsort((np.arange(len(keys)), -keys))[:k]
    assert len(ranking.hits) == min(k, len(ids))
    position = {vid: i for i, vid in enumerate(ids)}
    slack = tolerance * (bank.beta if normalised else 1)
    for hit, want in zip(ranking.hits, expected):
        got = position[hit.item_id]
        assert abs(hit.score - raw[got]) <= tolerance
        log_normalised = bank.beta * raw[got] - bank.log_normaliser[got]
        assert np.log(hit.normalised) == pytest.approx(log_normalised, abs=slack)
        assert abs(keys[got] - keys[want]) <= slack


def random_bank_case(dims, videos: int, seed: int, patterns, bank_size: int, beta: float
                     ) -> tuple[np.ndarray, ...]:
    """A random collection's unit embeddings and availability (test_exactness.random_videos),
    `bank_size + 8` unit caption embeddings and weights, their model scores, and QB-Norm's
    bank folded from the first `bank_size` of them (None when that is 0)."""
    rng, embeddings, availability = random_videos(dims, videos, seed, patterns)
    experts, width = len(dims), max(dims)
    embeddings /= np.linalg.norm(embeddings, axis=2, keepdims=True)  # as the model's: unit
    texts = rng.standard_normal((bank_size + 8, experts, width)).astype(np.float32)
    texts /= np.linalg.norm(texts, axis=2, keepdims=True)
    weights = rng.dirichlet(np.ones(experts), bank_size + 8).astype(np.float32)
    scores = model_scores(texts, weights, embeddings, availability)
    bank = None
    if bank_size:
        accumulator = BankAccumulator(videos, beta)
        accumulator.add(scores[:bank_size])
        bank = accumulator.result()
    return embeddings, availability, texts, weights, scores, bank


@st.composite
def banks(draw):
    """A collection (test_exactness.collections), a bank size and a beta (with unit
    embeddings, |s| <= 1, so evaluation's float32 exp(beta s - log Z) stays finite)."""
    return draw(collections()), draw(st.integers(1, 30)), draw(st.sampled_from([1.0, 20.0]))


@settings(max_examples=60, deadline=None)
@given(banks(), st.booleans())
def test_exact_search_ranks_as_evaluations_qbnorm(case, use_faiss):
    """Over random collections, patterns and banks, each query's answer is its row after
    QueryBank.normalise_in_place (normalised when its raw best video is active)."""
    (dims, videos, seed, patterns, k), bank_size, beta = case
    if use_faiss and faiss_module() is None:
        pytest.skip("faiss is not installed (pip install 'crosskd[search]')")
    embeddings, availability, texts, weights, scores, bank = random_bank_case(
        dims, videos, seed, patterns, bank_size, beta)
    ids = [f"v{i}" for i in range(videos)]
    index = Index.from_embeddings(ids, [f"e{e}" for e in range(len(dims))], dims, embeddings,
                                  availability, querybank=bank)
    for group in index.groups:
        group.backend = ExactBackend(group.vectors, use_faiss, group.backend.column)
    queries = [Query(t, w) for t, w in zip(texts[bank_size:], weights[bank_size:])]
    for ranking, raw in zip(index.rank(queries, k), scores[bank_size:]):
        best = np.sort(raw)[::-1]
        if len(raw) > 1 and best[0] - best[1] <= TOLERANCE:
            continue  # the best video is a tie within rounding: either decision is right
        assert_ranks_as(ranking, ids, raw, bank, k)
    for hits, raw in zip(index.search_many(queries, k, qbnorm=False), scores[bank_size:]):
        assert [h.score for h in hits] == pytest.approx(np.sort(raw)[::-1][:k], abs=TOLERANCE)


def test_caption_queries_rank_as_test_qbnorm(tiny_collection, tiny_qbnorm_index):
    """The index's bank is evaluation's (training captions vs the test videos), and every
    caption query ranks every video as its row of `test --qbnorm`'s matrix."""
    _, config, checkpoint, _ = tiny_collection
    root, evaluation_bank = tiny_qbnorm_index
    index = Index.load(root)
    np.testing.assert_array_equal(index.querybank.log_normaliser, evaluation_bank.log_normaliser)
    np.testing.assert_array_equal(index.querybank.active, evaluation_bank.active)
    assert index.querybank.size == evaluation_bank.size
    experiment = as_experiment(config)
    model = build_model(experiment.model)
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    data = RetrievalData.load(experiment.data)
    sims, _ = scores_and_querybank(model, data, torch.device("cpu"), 20.0)
    ids, slots = data.eval.video_ids, data.eval.slots
    decisions = []
    for n in range(len(index.captions)):
        owner, slot = int(index.captions.owner[n]), int(index.captions.slot[n])
        ranking = index.rank([index.caption(ids[owner], slot)], len(index))[0]
        assert_ranks_as(ranking, ids, sims[owner * slots + slot], index.querybank, len(index))
        decisions.append(ranking.normalised)
    assert any(decisions)


def test_a_random_model_of_any_seed_agrees(tiny_collection):
    """The same for other random models (other normalisers, other active sets)."""
    _, config, _, _ = tiny_collection
    experiment = as_experiment(config)
    data = RetrievalData.load(experiment.data)
    for seed in (1, 2):
        torch.manual_seed(seed)
        model = build_model(experiment.model).eval()
        index = index_from_model(model, experiment, data, qbnorm=BankChoice(5.0))
        sims, bank = scores_and_querybank(model, data, torch.device("cpu"), 5.0)
        ids = data.eval.video_ids
        for n in range(0, len(index.captions), 3):
            owner, slot = int(index.captions.owner[n]), int(index.captions.slot[n])
            ranking = index.rank([index.caption(ids[owner], slot)], 10)[0]
            assert_ranks_as(ranking, ids, sims[owner * data.eval.slots + slot], bank, 10)


@pytest.mark.parametrize("backend, options", [("ivf", {}), ("hnsw", {}),
                                              ("ivf", {"project_to": 24})])
def test_approximate_backends_agree_with_exact_qbnorm(tmp_path, backend, options):
    pytest.importorskip("faiss", reason="the approximate backends need faiss")
    from test_backends import clustered

    embeddings, availability, centres = clustered(3000, 3, 16)
    rng = np.random.default_rng(2)

    def queries(count: int) -> tuple[np.ndarray, np.ndarray]:
        texts = centres[rng.integers(0, 40, count)] + 0.5 * rng.standard_normal((count, 3, 16))
        texts /= np.linalg.norm(texts, axis=2, keepdims=True)
        return texts.astype(np.float32), rng.dirichlet(np.ones(3), count).astype(np.float32)

    accumulator = BankAccumulator(len(embeddings), 20.0)
    accumulator.add(model_scores(*queries(2000), embeddings, availability))
    bank = accumulator.result()
    ids = [f"v{i}" for i in range(len(embeddings))]
    exact = Index.from_embeddings(ids, "abc", [16] * 3, embeddings, availability, querybank=bank)
    Index.from_embeddings(ids, "abc", [16] * 3, embeddings, availability, backend=backend,
                          querybank=bank, approximate_from=500, **options).save(tmp_path / "i")
    approximate = Index.load(tmp_path / "i")
    assert approximate.groups[0].backend.index.d == \
        options.get("project_to", approximate.groups[0].slices.width) + 1
    manifest = json.loads((tmp_path / "i" / "manifest.json").read_text())
    (tmp_path / "i" / "manifest.json").write_text(json.dumps({**manifest, "qbnorm": None}))
    with pytest.raises(UserError, match=rf"g0.{backend}.faiss: holds 2\d\d\d vectors of"):
        Index.load(tmp_path / "i")  # its faiss index holds the column the manifest lost
    texts, weights = queries(30)
    found, normalised = [], []
    for truth, ranking in zip(exact.rank([Query(t, w) for t, w in zip(texts, weights)], 10),
                              approximate.rank([Query(t, w) for t, w in zip(texts, weights)],
                                               10)):
        assert ranking.normalised == truth.normalised
        normalised.append(truth.normalised)
        exact_scores = {h.item_id: (h.score, h.normalised) for h in truth.hits}
        for hit in ranking.hits:
            if hit.item_id in exact_scores:
                assert hit.score == pytest.approx(exact_scores[hit.item_id][0], abs=1e-5)
                assert hit.normalised == pytest.approx(exact_scores[hit.item_id][1], rel=1e-4)
        found.append(len(exact_scores.keys() & {h.item_id for h in ranking.hits}) / 10)
    assert sum(normalised) >= 10 and np.mean(found) >= 0.9


def test_the_cli_ranks_with_qbnorm_unless_told_not_to(tiny_collection, tiny_qbnorm_index, capsys):
    _, _, _, plain = tiny_collection
    root, _ = tiny_qbnorm_index
    normalised_any = False
    for video in ("video34", "video46", "video4", "video43"):
        raw = search_json(capsys, plain, "--caption", f"{video}:0", "-k", "6")
        off = search_json(capsys, root, "--caption", f"{video}:0", "-k", "6", "--no-qbnorm")
        on = search_json(capsys, root, "--caption", f"{video}:0", "-k", "6")
        assert "qbnorm" not in raw["query"]
        assert all("normalised_score" not in hit for hit in raw["results"])
        assert [(h["video_id"], h["score"]) for h in off["results"]] == \
            [(h["video_id"], h["score"]) for h in raw["results"]]
        assert off["query"]["qbnorm"] == {"beta": 20.0, "bank_size": 106, "requested": False,
                                          "applied": False}
        assert on["query"]["qbnorm"]["requested"] is True
        keys = [h["normalised_score"] if on["query"]["qbnorm"]["applied"] else h["score"]
                for h in on["results"]]
        assert keys == sorted(keys, reverse=True)
        normalised_any |= on["query"]["qbnorm"]["applied"]
    assert normalised_any
    assert main(["search", str(root), "--caption", "video34:0", "-k", "3"]) == 0
    assert "QB-Norm (beta 20, bank of 106 captions)" in capsys.readouterr().out


def test_index_qbnorm_flags(tmp_path, tiny_collection, tiny_qbnorm_index, capsys):
    folder, _, checkpoint, _ = tiny_collection
    out = tmp_path / "index"
    assert main(["index", "--checkpoint", str(checkpoint), "--config", str(folder / "config.json"),
                 "--out", str(out), "--qbnorm-beta", "5"]) == 0
    assert "QB-Norm: beta 5, bank of 106 captions" in capsys.readouterr().out
    assert json.loads((out / "manifest.json").read_text())["qbnorm"] == \
        {"beta": 5.0, "bank_size": 106}
    assert search_json(capsys, out, "--caption", "video34:0")["query"]["qbnorm"]["beta"] == 5.0


@pytest.mark.parametrize("args, message", [
    (["--qbnorm-beta", "0"], "--qbnorm-beta: beta must be a number > 0 and at most 300"),
    (["--qbnorm-beta", "２０"], "--qbnorm-beta: '２０' is not a decimal number"),
    (["--qbnorm-beta", "nan"], "--qbnorm-beta: 'nan' is not a decimal number"),
    (["--qbnorm-bank", "missing.csv"],
     "argument --qbnorm-bank/--qbnorm_bank: missing.csv: no such file"),
])
def test_bad_qbnorm_flags_end_in_one_line(tmp_path, tiny_collection, capsys, args, message):
    assert message in refused_index(capsys, tiny_collection, tmp_path / "index", *args)
    assert not (tmp_path / "index").exists()


def test_a_captions_file_bank_needs_the_datasets_text_encoder(tmp_path, tiny_collection,
                                                              capsys):
    folder, _, checkpoint, _ = tiny_collection
    (tmp_path / "bank.csv").write_text("video,caption\nq1,topic2word19 topic2word13\n")
    assert main(["index", "--checkpoint", str(checkpoint), "--config",
                 str(folder / "config.json"), "--out", str(tmp_path / "index"),
                 "--qbnorm-bank", str(tmp_path / "bank.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "records none that is available here" in err and len(err.splitlines()) == 1


def test_a_captions_file_bank_is_encoded_as_free_text(tmp_path, tiny_collection, capsys):
    """Each caption of the file (timed or not), through the recorded encoder and the model's
    text side, is one bank query: the normalisers equal folding their scores by hand."""
    text_encoders = pytest.importorskip("crosskd.extract.text_encoders")
    folder, _, checkpoint, _ = tiny_collection
    data = tmp_path / "MSRVTT"
    shutil.copytree(folder / "MSRVTT", data)
    encoder = text_encoders.build_text_encoder("demo")
    (data / "extraction.json").write_text(json.dumps({"text_encoder": encoder.record()}))
    captions = ["topic2word19 topic2word13", "topic1word3 topic1word4 topic1word8",
                "topic3word2", "topic0word11 topic4word5", "topic2word1"]
    rows = [{"video": f"q{i % 3}", "caption": c} for i, c in enumerate(captions)]
    for row in rows[1::2]:  # timed captions are bank queries too
        row.update(start=1.5, end=4.0)
    (tmp_path / "bank.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "index"
    assert main(["index", "--checkpoint", str(checkpoint), "--config", str(folder / "config.json"),
                 "--data", str(data), "--out", str(out), "--qbnorm-bank",
                 str(tmp_path / "bank.jsonl")]) == 0
    capsys.readouterr()
    index = Index.load(out)
    accumulator = BankAccumulator(len(index), 20.0)
    for caption in captions:
        hits = index.search(encoder.encode([caption])[0], len(index), qbnorm=False)
        scores = {h.item_id: h.score for h in hits}
        accumulator.add(np.array([[scores[vid] for vid in index.video_ids]]))
    expected = accumulator.result()
    assert index.querybank.size == len(captions)
    np.testing.assert_allclose(index.querybank.log_normaliser, expected.log_normaliser,
                               atol=20 * 1e-5)
    np.testing.assert_array_equal(index.querybank.active, expected.active)
    assert "bank.jsonl" in index.info["qbnorm_bank"]
