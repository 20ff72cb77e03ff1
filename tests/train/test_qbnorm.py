"""QB-Norm (crosskd.qbnorm, crosskd.inference.querybank, `test --qbnorm`) against an independent
re-statement of the official code (ioanacroi/qb-norm, dynamic_inverted_softmax.py, MIT).

What the official `qb_norm(train_test, test_test, {"beta": b, "k": k})` does:
1. the activation set: the union over bank rows of the columns of their k largest scores
   (each row of the raw bank matrix sorted descending, the first k indices kept);
2. both matrices are exponentiated after scaling by beta, each in its own dtype;
3. Z: the column sums of the exponentiated bank matrix;
4. a test row is normalised when the first column of its descending order (on the
   exponentiated test matrix) is in the activation set: it becomes its exponentiated scores
   divided by Z; every other row keeps its raw scores. (The official writes into the array it
   was given; the oracle below works on a copy.)
"""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch

from crosskd import qbnorm
from crosskd.cli import main
from crosskd.config import ConfigError, check_config, load_config, model_spec, parse_experiment
from crosskd.config.evaluation import qbnorm_beta
from crosskd.data.batches import TrainSplit
from crosskd.data.retrieval import RetrievalData
from crosskd.errors import UserError
from crosskd.inference import (bank_split, embed_videos, load_model, score_split,
                               scores_and_querybank)
from crosskd.inference.scoring import score_against
from crosskd.metrics import t2v_metrics
from crosskd.models import build_model
from crosskd.qbnorm import BankAccumulator
from crosskd.train.evaluate import evaluate_with_qbnorm

CPU = torch.device("cpu")
CONFIG = "configs/msrvtt-mini-cecap.json"
CHECKPOINT = "checkpoints/msrvtt-mini-cecap_seed0_trained_model.pth"


def official_qbnorm(bank: np.ndarray, test: np.ndarray, beta: float = 20.0,
                    k: int = 1) -> np.ndarray:
    """The oracle: the test matrix as the official Dynamic Inverted Softmax leaves it."""
    activated = set(np.unique(np.argsort(-bank, axis=1)[:, :k]).tolist())
    scaled_bank = np.exp(bank * beta)
    scaled_test = np.exp(test * beta)
    column_sums = scaled_bank.sum(axis=0)
    first = np.argsort(-scaled_test, axis=1)[:, 0]
    rows = np.array([int(video) in activated for video in first], bool)
    result = test.copy()
    result[rows, :] = scaled_test[rows, :] / column_sums
    return result


def _ours(bank: np.ndarray, test: np.ndarray, beta: float, chunk: int) -> np.ndarray:
    """crosskd's QB-Norm of `test`, the bank folded `chunk` rows at a time."""
    accumulator = BankAccumulator(test.shape[1], beta)
    for start in range(0, len(bank), chunk):
        accumulator.add(bank[start:start + chunk])
    result = test.copy()
    accumulator.result().normalise_in_place(result)
    return result


def _hubby(rng: np.random.Generator, rows: int, videos: int) -> np.ndarray:
    """Cosine-like float32 scores in which a few videos are hubs (high for many queries)."""
    hub = np.zeros(videos, np.float32)
    hub[rng.choice(videos, 3, replace=False)] = 0.3
    return np.tanh(rng.normal(0, 0.3, (rows, videos)) + hub).astype(np.float32)


@pytest.mark.parametrize("beta", [20.0, 5.0, 0.5])
def test_matches_the_official_code_on_random_scores(beta, monkeypatch):
    monkeypatch.setattr(qbnorm, "NORMALISE_CHUNK_ELEMENTS", 7 * 60)  # several row chunks
    rng = np.random.default_rng(0)
    bank, test = _hubby(rng, 40, 60), _hubby(rng, 180, 60)
    expected = official_qbnorm(bank, test, beta)
    ours = _ours(bank, test, beta, chunk=16)
    assert not np.array_equal(expected, test)  # some rows were normalised, not all
    assert (expected == test).all(axis=1).any()
    np.testing.assert_allclose(ours, expected, rtol=2e-6, atol=0)
    masks = np.ones((60, 3))
    assert t2v_metrics(ours, masks) == t2v_metrics(expected, masks)


def test_a_large_beta_stays_finite_where_the_official_float32_overflows():
    rng = np.random.default_rng(1)
    bank, test = _hubby(rng, 200, 30), _hubby(rng, 60, 30)
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.isfinite(official_qbnorm(bank, test, beta=200.0)).all()
    expected = official_qbnorm(bank.astype(np.float64), test.astype(np.float64), beta=200.0)
    ours = _ours(bank, test, 200.0, chunk=50)
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-30)


def test_bank_records_its_size_and_activation_set():
    scores = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.1], [0.1, 0.7, 0.2]], np.float32)
    accumulator = BankAccumulator(3, 20.0)
    accumulator.add(scores[:2])
    accumulator.add(scores[2:])
    accumulator.add(scores[:0])
    bank = accumulator.result()
    assert bank.active.tolist() == [True, True, False]
    assert bank.summary() == {"beta": 20.0, "k": 1, "bank_size": 3, "active_videos": 2}
    np.testing.assert_allclose(bank.log_normaliser,
                               np.log(np.exp(20.0 * scores.astype(np.float64)).sum(axis=0)))


@pytest.mark.parametrize("beta", [0, -1.0, float("nan"), float("inf"), 300.5, 1e30])
def test_a_bad_beta_is_refused(beta):
    with pytest.raises(ValueError, match="beta must be a number > 0 and at most 300"):
        BankAccumulator(3, beta)


def test_an_empty_bank_is_refused():
    with pytest.raises(ValueError, match="query bank is empty"):
        BankAccumulator(3, 20.0).result()
    train = types.SimpleNamespace(num_captions=np.zeros(4, np.int64), num_videos=4)
    with pytest.raises(UserError, match="training split .4 videos. has none"):
        bank_split(train)


def test_the_bank_leaves_out_empty_caption_slots(tiny_msrvtt):
    config, data = tiny_msrvtt
    torch.manual_seed(0)
    model = build_model(model_spec(config)).eval()
    counts = data.train.num_captions
    assert counts.min() < counts.max()  # some training videos have fewer captions
    queries = bank_split(data.train)
    assert queries.query_masks.sum() == counts.sum() and queries.slots == counts.max()
    with torch.inference_mode():  # the same chunks as below: the same last bits
        video = embed_videos(model, data.eval, CPU, caption_chunk=7)
        bank = score_against(model, queries, video, CPU, 7).numpy()
    bank = bank[queries.query_masks.reshape(-1) > 0]
    test = score_split(model, data.eval, CPU, caption_chunk=7)
    sims, querybank = scores_and_querybank(model, data, CPU, 20.0, caption_chunk=7)
    np.testing.assert_array_equal(sims, test)
    assert querybank.size == counts.sum()
    querybank.normalise_in_place(sims)
    np.testing.assert_allclose(sims, official_qbnorm(bank, test), rtol=2e-6, atol=0)


def test_fused_captions_make_one_bank_query_per_video(tiny_msrvtt):
    _, data = tiny_msrvtt
    train = data.train
    fused = TrainSplit(train.features, train.max_tokens, train.modalities, fuse_captions=True)
    queries = bank_split(fused)
    assert queries.slots == 1 and queries.query_masks.sum() == train.num_videos


@pytest.fixture(scope="module")
def golden(conformance):
    """The conformance checkpoint, its test protocol and data, and the bank's raw scores."""
    experiment = parse_experiment(load_config(conformance / CONFIG)).evaluation()
    data_dir = conformance / experiment.raw["data_loader"]["args"]["data_dir"]
    config = {**experiment.raw, "data_loader": {**experiment.raw["data_loader"], "args": {
        **experiment.raw["data_loader"]["args"], "data_dir": str(data_dir)}}}
    experiment = parse_experiment(config)
    model = load_model(experiment.model, conformance / CHECKPOINT)
    data = RetrievalData.load(experiment.data)
    queries = bank_split(data.train)
    with torch.inference_mode():
        video = embed_videos(model, data.eval, CPU)
        bank = score_against(model, queries, video, CPU, 240).numpy()
    return model, data, bank[queries.query_masks.reshape(-1) > 0]


@pytest.mark.parametrize("beta", [20.0, 3.0])
def test_golden_data_matches_the_official_code(golden, beta):
    model, data, bank = golden
    test = score_split(model, data.eval, CPU)
    expected = official_qbnorm(bank, test, beta)
    metrics = evaluate_with_qbnorm(model, data, CPU, beta)
    masks = data.eval.query_masks
    assert metrics["t2v"] == t2v_metrics(expected, masks)
    assert metrics["qbnorm"]["t2v_before"] == t2v_metrics(test, masks)
    assert metrics["qbnorm"]["bank_size"] == len(bank) == 48 * 20
    sims, querybank = scores_and_querybank(model, data, CPU, beta)
    querybank.normalise_in_place(sims)
    # the official rounds beta * s to float32 before exp (up to beta * 2**-24 relative; 1.4e-6
    # measured at beta 20); crosskd exponentiates in float64 and rounds once
    np.testing.assert_allclose(sims, expected, rtol=2e-6, atol=0)


def _test(conformance, tmp_path, monkeypatch, *flags: str) -> tuple[int, dict]:
    monkeypatch.chdir(conformance)  # the config's data_dir is relative to this folder
    out = tmp_path / "m.json"
    code = main(["test", "--config", CONFIG, "--resume", CHECKPOINT,
                 "--eval_from_training_config", "--out", str(out), *flags])
    return code, json.loads(out.read_text()) if code == 0 else {}


def test_command_line_reports_before_and_after(golden, conformance, tmp_path, monkeypatch,
                                               capsys):
    model, data, bank = golden
    expected = json.loads((conformance / "expected_test_metrics.json").read_text())
    code, metrics = _test(conformance, tmp_path, monkeypatch, "--qbnorm")
    assert code == 0
    test = score_split(model, data.eval, CPU)
    assert metrics["t2v"] == t2v_metrics(official_qbnorm(bank, test), data.eval.query_masks)
    assert metrics["v2t"] == expected["v2t_metrics"]  # v2t stays on the raw scores
    assert metrics["qbnorm"]["t2v_before"] == expected["t2v_metrics"]
    assert {"beta": 20.0, "k": 1, "bank_size": 960}.items() <= metrics["qbnorm"].items()
    assert metrics["protocol"]["num_queries"] == 478
    assert "| before QB-Norm |" in capsys.readouterr().out
    _, five = _test(conformance, tmp_path, monkeypatch, "--qbnorm-beta", "5")
    assert five["qbnorm"]["beta"] == 5.0
    assert five["t2v"] == t2v_metrics(official_qbnorm(bank, test, 5.0), data.eval.query_masks)


def test_the_config_key_turns_it_on_for_the_final_test(conformance, tmp_path, monkeypatch):
    _, plain = _test(conformance, tmp_path, monkeypatch)
    assert "qbnorm" not in plain
    _, keyed = _test(conformance, tmp_path, monkeypatch,
                     "--set", 'eval_settings.qbnorm={"beta": 5}')
    _, flagged = _test(conformance, tmp_path, monkeypatch, "--qbnorm-beta", "5")
    assert keyed == flagged


@pytest.mark.parametrize("text", ["abc", "0", "-1", "nan", "inf", "1e999", "\uff11", "1_0"])
def test_a_bad_beta_flag_ends_in_one_line(text, capsys):
    assert main(["test", "--resume", "x", "--qbnorm-beta", text]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crosskd test: error: --qbnorm-beta:") and err.count("\n") == 1


@pytest.mark.parametrize(("value", "message"), [
    ({"beta": 0}, "qbnorm.beta: beta must be a number > 0 and at most 300"),
    ({"beta": "20"}, "qbnorm.beta must be"),
    ("yes", "qbnorm must be"),
])
def test_a_bad_config_key_is_refused(value, message):
    config = {"data_loader": {"args": {}}, "qbnorm": value}
    with pytest.raises(ConfigError, match=message):
        check_config(config)
        qbnorm_beta(config)


@pytest.mark.parametrize(("value", "beta"), [(None, None), (False, None), (True, 20.0),
                                             ({}, 20.0), ({"beta": 2}, 2.0)])
def test_config_key_values(value, beta):
    assert qbnorm_beta({"qbnorm": value}) == beta
