"""Word-vector files: GloVe text, word2vec text and binary told apart, streamed into blocks,
and every malformed file refused in one line naming the file and the line (or vector)."""

from __future__ import annotations

import logging
import tracemalloc

import numpy as np
import pytest

from crosskd.errors import UserError
from crosskd.extract import word_vector_files
from crosskd.extract.text_encoders import build_text_encoder, text_encoder_from_record
from crosskd.extract.word_vector_files import load_word_vectors

WORDS = ["red", "Circle", "circle", "moves", "left", "e.g.", "don't"]


def _table(dim: int = 300, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {word: rng.standard_normal(dim).astype(np.float32) for word in WORDS}


def _text(table: dict[str, np.ndarray], header: bool = False) -> str:
    dim = len(next(iter(table.values())))
    head = f"{len(table)} {dim}\n" if header else ""
    return head + "".join(f"{w} {' '.join(f'{x:.9g}' for x in v)}\n" for w, v in table.items())


def _binary(table: dict[str, np.ndarray], newline: bytes = b"\n") -> bytes:
    dim = len(next(iter(table.values())))
    return f"{len(table)} {dim}\n".encode() + b"".join(
        w.encode() + b" " + v.astype("<f4").tobytes() + newline for w, v in table.items())


@pytest.mark.parametrize("kind", ["glove", "word2vec-text", "binary", "binary-no-newline"])
def test_each_format_gives_the_same_vectors(tmp_path, caplog, kind):
    table = _table()
    path = tmp_path / "vectors"
    if kind.startswith("binary"):
        path.write_bytes(_binary(table, b"" if kind == "binary-no-newline" else b"\n"))
    else:
        path.write_text(_text(table, header=kind == "word2vec-text"))
    with caplog.at_level(logging.INFO, logger="crosskd.extract.word_vector_files"):
        encoder = build_text_encoder("word2vec", {"path": str(path)})
    name = {"glove": "GloVe text", "word2vec-text": "word2vec text"}.get(kind, "word2vec binary")
    # "Circle" (lower-cased) comes first and wins; "e.g." can never be a caption's word
    assert f"{name}, 7 vectors of 300 dimensions; 5 kept" in caplog.text
    red_circle, unknown = encoder.encode(["Red circle, don't!", "nothing known"])
    np.testing.assert_allclose(red_circle, np.stack([table["red"], table["Circle"],
                                                     table["don't"]]), rtol=1e-6)
    assert unknown.shape == (1, 300) and not unknown.any()
    assert encoder.text_feat == "word-vectors-300d"
    assert text_encoder_from_record(encoder.record()).weights() == encoder.weights()


def test_vectors_span_blocks_and_the_last_block_is_trimmed(tmp_path, monkeypatch):
    monkeypatch.setattr(word_vector_files, "BLOCK_ROWS", 2)
    table = {f"w{i}": np.full(3, i, np.float32) for i in range(5)}
    (tmp_path / "glove.txt").write_text(_text(table))
    vectors = load_word_vectors(tmp_path / "glove.txt")
    assert len(vectors) == 5 and vectors.dim == 3
    assert [float(vectors[f"w{i}"][0]) for i in range(5)] == [0, 1, 2, 3, 4]
    assert [len(block) for block in vectors._blocks] == [2, 2, 1]


def test_a_large_file_is_held_once_not_as_text_too(tmp_path, monkeypatch):
    """The old reader held the file's bytes, their decoded text and the vectors at once."""
    monkeypatch.setattr(word_vector_files, "BLOCK_ROWS", 512)
    rng = np.random.default_rng(0)
    path = tmp_path / "glove.txt"
    with open(path, "w") as handle:
        for i in range(3000):
            handle.write(f"w{i} " + " ".join(f"{x:.7f}" for x in rng.standard_normal(300)) + "\n")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        vectors = load_word_vectors(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    table_bytes = 3000 * 300 * 4
    assert len(vectors) == 3000 and size > 2.5 * table_bytes
    assert peak < table_bytes + size / 4, (peak, size)


def _refused(path, *fragments):
    with pytest.raises(UserError) as caught:
        load_word_vectors(path)
    message = str(caught.value)
    assert "\n" not in message and f"word vectors file {path}" in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("content, fragments", [
    ("a 1 2 3\nb 1 2\n", ["line 2", "2 numbers where the file's vectors have 3"]),
    ("a 1 2 3\nb 1 x 3\n", ["line 2", "not a number"]),
    ("a 1 2 3\nb 1 \u0661 3\n", ["line 2", "not a number"]),
    ("2 3\na 1 2 3\nb 1 nan 3\n", ["line 3", "infinite or NaN"]),
    ("a 1 2 3\nb 1e999 2 3\n", ["line 2", "infinite or NaN"]),
    ("2 0\na 1\n", ["line 1", "out of range"]),
    ("", ["line 1", "holds no vectors"]),
    ("\n\n", ["line 1", "holds no vectors"]),
    ("word\n", ["line 1", "0 numbers"]),
    ("e.g. 1 2\n!! 3 4\n", ["no vector belongs to a word a caption can hold"]),
])
def test_malformed_text_files_are_one_line(tmp_path, content, fragments):
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    _refused(path, *fragments)


def test_malformed_binary_files_are_one_line(tmp_path, monkeypatch):
    table = _table(4)
    whole = _binary(table)
    path = tmp_path / "bad.bin"
    path.write_bytes(whole[:-10])
    _refused(path, "vector 7", "the file ends after 6 of the 7 vectors its header announces")
    path.write_bytes(whole.replace(b"7 4\n", b"9 4\n", 1))
    _refused(path, "vector 8", "ends after 7 of the 9 vectors")
    path.write_bytes(b"1 2\n" + b"x" * 100 + b" " + np.float32([1, np.inf]).tobytes())
    _refused(path, "vector 1", "infinite or NaN")
    monkeypatch.setattr(word_vector_files, "MAX_WORD", 16)
    path.write_bytes(b"1 2\n" + b"y" * 40 + np.float32([1, 2]).tobytes())
    _refused(path, "vector 1", "no word of at most 16 bytes")


def test_an_overlong_line_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(word_vector_files, "MAX_LINE", 64)
    path = tmp_path / "long.txt"
    path.write_text("a 1 2\nb " + "1 " * 100 + "\n")
    _refused(path, "line 2", "longer than 64 bytes")


def test_a_missing_or_unreadable_file_is_one_line(tmp_path):
    with pytest.raises(UserError, match="not found"):
        build_text_encoder("word2vec", {"path": str(tmp_path / "absent")})
    with pytest.raises(UserError, match="cannot be read"):
        load_word_vectors(tmp_path)
