"""`crosskd report`: ranks that agree with the test metrics, and a page that escapes text."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from crosskd.cli import main
from crosskd.config import as_experiment
from crosskd.data.retrieval import RetrievalData
from crosskd.metrics import t2v_metrics
from crosskd.search import Index
from crosskd.search.report import summary
from crosskd.inference import load_model, score_split


def test_report_ranks_give_the_test_metrics(tiny_collection):
    _, config, checkpoint, index_path = tiny_collection
    experiment = as_experiment(config)
    data = RetrievalData.load(experiment.data)
    sims = score_split(load_model(experiment.model, checkpoint), data.eval, torch.device("cpu"))
    metrics = t2v_metrics(sims, np.asarray(data.eval.query_masks))
    recall = dict(summary(Index.load(index_path))["recall"])
    for k in (1, 5, 10):
        assert recall[k] == pytest.approx(metrics[f"R{k}"], abs=1e-6)


def test_report_page_from_an_index_and_from_a_checkpoint(tmp_path, tiny_collection, capsys):
    folder, _, checkpoint, index_path = tiny_collection
    index = tmp_path / "index"
    shutil.copytree(index_path, index)
    texts = json.loads((index / "captions" / "texts.json").read_text())
    texts["video34"][0] = "<script>alert(1)</script>"
    (index / "captions" / "texts.json").write_text(json.dumps(texts))
    assert main(["report", str(index), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Recall at K" in page and "<svg" in page and "rank" in page
    assert main(["report", str(checkpoint), "--config", str(folder / "config.json"),
                 "--out", str(tmp_path / "c.html")]) == 0
    assert "49 queries, 18 videos" in capsys.readouterr().out
    metrics = tmp_path / "metrics.json"
    metrics.write_text("{}")
    assert main(["report", str(metrics)]) == 2
    assert "per-query ranks need the run" in capsys.readouterr().err
