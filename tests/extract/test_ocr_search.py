"""Words written in videos found by search: rendered-text videos extracted with the `ocr`
expert (RapidOCR's real weights) and hashed word vectors, a short training, then
`crosskd search` with free text ranks the test video that shows those words first."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("rapidocr_onnxruntime", reason="the ocr expert needs "
                    "rapidocr-onnxruntime: pip install \"crosskd[ocr]\"")

from crosskd.cli import main  # noqa: E402
from text_frames import text_video  # noqa: E402

PHRASES = ["Storm hits the coast", "Markets fall sharply", "Lecture on graph theory",
           "Recipe for apple pie", "Football final tonight", "Volcano erupts again",
           "Election results today", "Garden flowers bloom"]
#: test videos show the words of these training videos again (new files, same words)
TEST_COPIES = [2, 3, 5, 7]
VAL_COPIES = [0, 1]


def _collection(folder):
    """Training videos, one phrase each, and validation and test videos showing some phrase
    again; every video on the same background, so only the words tell them apart."""
    rows = []
    for split, picks in (("train", range(len(PHRASES))), ("val", VAL_COPIES),
                         ("test", TEST_COPIES)):
        for n in picks:
            video_id = f"{split}{n}"
            text_video(folder / f"{video_id}.mp4", [[PHRASES[n]]], seconds_each=2.0, fps=2)
            caption = PHRASES[n].lower()
            rows.append({"video": video_id, "split": split,
                         "captions": [caption, f"the words {caption} on screen"]})
    captions = folder / "captions.jsonl"
    captions.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return captions


@pytest.mark.slow
def test_search_finds_a_video_by_the_words_written_in_it(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    captions = _collection(videos)
    data = tmp_path / "data"
    assert main(["extract", str(videos), "--captions", str(captions), "--out", str(data),
                 "--experts", "demo-colour,ocr", "--text-encoder", "demo"]) == 0
    record = json.loads((data / "extraction.json").read_text())
    assert record["videos"]["test5"]["texts"]["ocr"] == "Volcano erupts again"
    assert record["videos"]["test5"]["timed_text"]["ocr"][0]["start"] == 0.5
    assert record["decode"]["sizes"] == {"1.0": 720}
    assert main(["train", "--config", str(data / "config.json"), "--device", "cpu",
                 "--set", "trainer.epochs=20"]) == 0
    (run,) = (data / "runs" / "config").iterdir()
    index = tmp_path / "index"
    assert main(["index", "--checkpoint", str(run), "--out", str(index), "--split", "test",
                 "--media-root", str(videos)]) == 0
    capsys.readouterr()
    for query, expected in (("volcano erupts", "test5"), ("apple pie recipe", "test3")):
        assert main(["search", str(index), query, "-k", "4", "--json"]) == 0
        answer = json.loads(capsys.readouterr().out.splitlines()[-1])
        assert answer["results"][0]["video_id"] == expected, answer["results"]
        shares = answer["results"][0]["contributions"]  # the words, not the colours, found it
        assert shares["ocr"] > shares["appearance.demo-colour.0"], shares
        # and the hit shows what was read
        assert answer["results"][0]["read"]["ocr"] == record["videos"][expected]["texts"]["ocr"]
