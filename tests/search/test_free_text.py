"""Free-text queries go through the text encoder the dataset recorded."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from crosskd.cli import main
from crosskd.search import Index

text_encoders = pytest.importorskip("crosskd.extract.text_encoders",
                                    reason="free text needs crosskd.extract")


def test_free_text_is_embedded_by_the_recorded_encoder(tmp_path, tiny_collection, capsys):
    folder, _, checkpoint, _ = tiny_collection
    data = tmp_path / "MSRVTT"
    shutil.copytree(folder / "MSRVTT", data)
    encoder = text_encoders.build_text_encoder("demo")  # 300-d, as the synthetic w2v text
    (data / "extraction.json").write_text(json.dumps({"text_encoder": encoder.record()}))
    out = tmp_path / "index"
    assert main(["index", "--checkpoint", str(checkpoint), "--config", str(folder / "config.json"),
                 "--data", str(data), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["search", str(out), "topic2word19 topic2word13", "-k", "3", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    index = Index.load(out)
    by_features = index.search(encoder.encode(["topic2word19 topic2word13"])[0], 3)
    assert [h["video_id"] for h in answer["results"]] == [h.item_id for h in by_features]
    assert np.allclose([h["score"] for h in answer["results"]], [h.score for h in by_features])
    assert main(["search", str(out), "   "]) == 2
    assert "the query is empty" in capsys.readouterr().err
