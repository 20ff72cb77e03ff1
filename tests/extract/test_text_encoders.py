"""Caption encoders: the same features from a record, local weights, offline errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from crosskd.errors import UserError
from crosskd.extract.text_encoders import (TEXT_ENCODERS, build_text_encoder, parse_choice,
                                           text_encoder_from_record)

CAPTIONS = ["A red circle moves left", "a blue square moves right on green", "", "zzz"]


def test_demo_encoder_is_word_keyed_and_rebuilt_from_its_record():
    encoder = build_text_encoder("demo")
    features = encoder.encode(CAPTIONS)
    assert [f.shape for f in features] == [(5, 300), (7, 300), (1, 300), (1, 300)]
    assert all(f.dtype == np.float32 for f in features)
    # "moves" is the same vector in both captions, "red" and "blue" differ
    np.testing.assert_array_equal(features[0][3], features[1][3])
    assert abs(float(features[0][1] @ features[1][1])) < 0.3
    assert not features[2].any()
    record = json.loads(json.dumps(encoder.record()))
    assert record["text_feat"] == "hashed-words-300d" and record["dim"] == 300
    again = text_encoder_from_record(record).encode(CAPTIONS)
    for a, b in zip(features, again):
        np.testing.assert_array_equal(a, b)


def test_a_record_of_other_weights_is_refused():
    record = {**build_text_encoder("demo").record(), "weights": "something-else"}
    with pytest.raises(UserError, match="re-extract"):
        text_encoder_from_record(record)
    with pytest.raises(UserError, match="unknown text encoder 'nope'"):
        text_encoder_from_record({"name": "nope"})
    with pytest.raises(UserError, match="lacks its name"):
        text_encoder_from_record({})


def test_parse_choice():
    assert parse_choice("transformers:model=gpt2,weights=/w") == (
        "transformers", {"model": "gpt2", "weights": "/w"})
    assert parse_choice("demo") == ("demo", {})
    with pytest.raises(UserError, match="key=value"):
        parse_choice("transformers:gpt2")


def test_word2vec_text_and_binary_files(tmp_path):
    rng = np.random.default_rng(0)
    table = {word: rng.standard_normal(300).astype(np.float32) for word in ("red", "circle")}
    text = tmp_path / "w2v.txt"
    text.write_text("2 300\n" + "".join(f"{w} {' '.join(map(str, v))}\n" for w, v in table.items()))
    binary = tmp_path / "w2v.bin"
    binary.write_bytes(b"2 300\n" + b"".join(w.encode() + b" " + v.tobytes() + b"\n"
                                             for w, v in table.items()))
    for path in (text, binary):
        encoder = build_text_encoder("word2vec", {"path": str(path)})
        red_circle, unknown = encoder.encode(["red circle!", "nothing known"])
        np.testing.assert_allclose(red_circle, np.stack([table["red"], table["circle"]]),
                                   rtol=1e-6)
        assert unknown.shape == (1, 300) and encoder.text_feat == "word-vectors-300d"
        assert text_encoder_from_record(encoder.record()).weights() == encoder.weights()
    with pytest.raises(UserError, match="not found"):
        build_text_encoder("word2vec", {"path": str(tmp_path / "absent")})


def test_transformers_encoder_loads_a_local_folder(tmp_path):
    pytest.importorskip("transformers", reason="the transformers encoder needs crosskd[extract]")
    from tiny_hf import save_tiny_gpt2

    folder = save_tiny_gpt2(tmp_path / "gpt2-tiny")
    encoder = build_text_encoder("transformers", {"model": "gpt2", "weights": str(folder)})
    short, long, empty, _ = encoder.encode(CAPTIONS)
    assert short.shape == (5, 300) and long.shape == (7, 300) and empty.shape[0] >= 1
    # padding in a batch changes nothing: the caption alone gives the same tokens
    np.testing.assert_allclose(encoder.encode([CAPTIONS[0]])[0], short, atol=1e-4)
    record = encoder.record()
    assert record["weights"].startswith("sha256:") and record["text_feat"] == "gpt2-300d"
    np.testing.assert_allclose(text_encoder_from_record(record).encode(CAPTIONS[:1])[0], short,
                               atol=1e-4)


def test_without_network_the_error_names_the_local_folder_option():
    pytest.importorskip("transformers", reason="the transformers encoder needs crosskd[extract]")
    code = ("from crosskd.extract.text_encoders import build_text_encoder\n"
            "from crosskd.errors import UserError\n"
            "try:\n build_text_encoder('transformers', {'model': 'no-such-org/no-such-model'})\n"
            "except UserError as err:\n print(err)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": os.environ.get("HF_HOME", "/nonexistent-hf")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert "--text-encoder transformers:weights=DIR" in out.stdout, out.stdout + out.stderr
    assert "Traceback" not in out.stderr


def test_every_registered_encoder_has_a_record_name():
    assert set(TEXT_ENCODERS) == {"demo", "transformers", "word2vec"}
    assert all(cls.name == name for name, cls in TEXT_ENCODERS.items())


def test_own_text_feature_names_say_what_made_them_and_how_wide():
    from crosskd.config.model import text_feature_dim
    from crosskd.experts import named_text_feat, text_feature_width

    assert named_text_feat("hashed-words", 300) == "hashed-words-300d"
    assert named_text_feat("my model/v2", 256) == "my-model-v2-256d"
    assert [text_feature_dim(name) for name in ("gpt2-256d", "w2v", "electra")] == [256, 300, 256]
    assert text_feature_width("gpt5") is None and text_feature_width("-300d") is None
    with pytest.raises(UserError, match="'gpt5'.*NAME-<width>d"):
        text_feature_dim("gpt5")
    with pytest.raises(UserError, match="experts.text_feat: 100000 is out of range"):
        text_feature_dim("huge-100000d")
