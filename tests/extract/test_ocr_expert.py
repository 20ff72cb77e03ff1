"""The `ocr` expert: RapidOCR's shipped PP-OCR weights read text the tests draw (DejaVu Sans)
into frames and videos; lines merged across frames; a missing package is one line."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from crosskd.errors import UserError
from crosskd.extract.encoder import words
from crosskd.extract.ocr_lines import Line, distinct_text, merge_lines
from crosskd.extract.run import decode_spec
from crosskd.extract.text_encoders import build_text_encoder
from crosskd.extract.video_experts import build_experts

NEEDS_OCR = "the ocr expert needs rapidocr-onnxruntime: pip install \"crosskd[ocr]\""


def test_lines_read_in_consecutive_frames_are_one_segment():
    frames = [(0.5, [Line("Storm hits coast", 0.90), Line("BREAKING", 0.99)]),
              (1.5, [Line("Storm hlts coast", 0.95), Line("breaking", 0.80)]),
              (2.5, [Line("Lecture three", 0.97)]),
              (3.5, []),
              (4.5, [Line("Storm hits coast", 0.92)])]
    segments = merge_lines(frames)
    assert [(s.text, s.start, s.end) for s in segments] == [
        ("Storm hlts coast", 0.5, 1.5), ("BREAKING", 0.5, 1.5), ("Lecture three", 2.5, 2.5),
        ("Storm hits coast", 4.5, 4.5)]
    assert segments[0].record() == {"text": "Storm hlts coast", "confidence": 0.95,
                                    "start": 0.5, "end": 1.5}
    # the tokens count a line once, however often it was on screen
    assert distinct_text(segments) == "Storm hlts coast\nBREAKING\nLecture three\nStorm hits coast"
    assert merge_lines([]) == [] and distinct_text([]) == ""


def test_same_picture_sees_new_text_but_not_noise():
    from crosskd.extract.ocr_expert import same_picture

    rng = np.random.default_rng(0)
    frame = np.full((96, 160, 3), 100, np.uint8)
    noisy = (frame + rng.integers(-2, 3, frame.shape)).astype(np.uint8)
    assert same_picture(frame, noisy)
    changed = frame.copy()
    changed[40:56, 20:60] = 255  # a word appears in a few blocks
    assert not same_picture(frame, changed)
    assert not same_picture(frame, frame[:48])


def test_a_missing_package_is_one_line_before_any_decoding(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)
    with pytest.raises(UserError, match=r'expert ocr needs rapidocr-onnxruntime .*crosskd\[ocr\]'):
        build_experts("ocr", text_encoder=build_text_encoder("demo"))


def _ocr(**options):
    pytest.importorskip("rapidocr_onnxruntime", reason=NEEDS_OCR)
    (expert,) = build_experts("ocr", {"ocr": options}, text_encoder=build_text_encoder("demo"))
    return expert


@pytest.mark.parametrize("options, message", [({"pixel_dim": "16"}, "pixel_dim=16"),
                                              ({"min_confidence": "101"}, "percentage"),
                                              ({"min_confidence": "x"}, "whole number")])
def test_bad_options_are_one_line(options, message):
    with pytest.raises(UserError, match=message):
        _ocr(**options)


def test_the_drawn_words_are_read_from_a_frame():
    from text_frames import text_frame

    expert = _ocr()
    drawn = ["Storm hits the coast", "Lecture three: graphs and trees"]
    lines = expert.read(text_frame(drawn))
    assert [words(line.text) for line in lines] == [words(text) for text in drawn]
    assert all(line.confidence > 0.9 for line in lines)
    assert expert.read(np.full((720, 1280, 3), 90, np.uint8)) == []


def test_a_video_gives_tokens_text_and_timed_lines(tmp_path):
    from crosskd.extract.decode import decode
    from text_frames import text_video

    expert = _ocr()
    reads = []
    read = expert.read
    expert.read = lambda frame: reads.append(1) or read(frame)
    path = text_video(tmp_path / "news.mp4", [["Storm hits the coast"], ["Markets fall sharply"],
                                              []], fps=2)
    spec = decode_spec([expert])
    assert spec.sizes == ((1.0, 720),)
    result = expert.compute(decode(path, spec))
    assert len(reads) == 3  # the second frame of each screen looks like the first: not read
    assert words(result.text) == "storm hits the coast markets fall sharply".split()
    assert [(line["start"], line["end"]) for line in result.timed_text] == [(0.5, 1.5),
                                                                            (2.5, 3.5)]
    assert all(line["confidence"] > 0.9 for line in result.timed_text)
    expected = build_text_encoder("demo").encode([result.text])[0]
    np.testing.assert_array_equal(result.value, expected)
    assert result.value.shape == (7, 300) and result.value.dtype == np.float32
    blank = text_video(tmp_path / "blank.mp4", [[]], fps=2)
    assert expert.compute(decode(blank, spec)).value is None  # no text: missing


def test_other_experts_keep_their_frame_size_beside_ocr():
    expert = _ocr()
    alone = decode_spec(build_experts("demo-colour"))
    both = decode_spec([*build_experts("demo-colour"), expert])
    assert both.pixel_dim == alone.pixel_dim == 64 and both.pixels(4.0) == 64
    assert both.pixels(1.0) == 720 and "sizes" not in alone.record()
