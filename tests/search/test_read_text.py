"""What an own-video dataset's experts read or heard (OCR lines, speech transcripts, recorded
in extraction.json) travels into the index and out with every hit: the API's JSON, the CLI's
table (escaped), the report (HTML-escaped); an index without it answers as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crosskd.cli import main
from crosskd.errors import UserError
from crosskd.search import Index
from crosskd.search.answers import answer, query_of
from crosskd.search.build import read_texts
from crosskd.search.captions import MAX_READ

QUERY = "video34:0"


def _hits(root, k: int = 18) -> dict[str, dict]:
    """Every video of the tiny split as the JSON answer holds it, by id."""
    index = Index.load(root)
    return {hit["video_id"]: hit for hit in
            answer(index, query_of(index, caption=QUERY), k)["results"]}


def test_the_record_s_texts_are_kept_cut_and_only_where_there_are_some():
    record = {"videos": {"a": {"texts": {"ocr": "  EXIT  ", "speech": ""}},
                         "b": {"texts": {"speech": "x" * (MAX_READ + 5), "ocr": None}},
                         "c": {"texts": "not an object"}, "d": ["not an entry"], "e": {}}}
    read = read_texts(record, Path("data"), ["a", "b", "c", "d", "e", "unrecorded"])
    assert read == {"a": {"ocr": "EXIT"}, "b": {"speech": "x" * (MAX_READ - 1) + "\u2026"}}
    assert read_texts({}, Path("data"), ["a"]) == {}
    with pytest.raises(UserError, match="'videos' is not a table of video ids"):
        read_texts({"videos": 3}, Path("data"), ["a"])


def test_hits_carry_what_their_video_read_or_heard(tiny_read_index):
    root, recorded = tiny_read_index
    stored = json.loads((root / "captions" / "read.json").read_text())
    assert set(stored) == set(recorded) and set(stored["video4"]) == {"speech"}
    hits = _hits(root)
    assert hits["video34"]["read"] == recorded["video34"]
    assert hits["video46"]["read"] == {"ocr": "BREAKING NEWS"}
    assert len(hits["video4"]["read"]["speech"]) == MAX_READ
    assert all("read" not in hit for vid, hit in hits.items() if vid not in recorded)


def test_an_index_without_read_text_answers_as_before(tiny_collection, tiny_read_index):
    root = tiny_collection[3]
    assert not (root / "captions" / "read.json").exists()
    plain = _hits(root)
    assert all("read" not in hit for hit in plain.values())
    with_read = _hits(tiny_read_index[0])
    assert {vid: {k: v for k, v in hit.items() if k != "read"} for vid, hit in
            with_read.items()} == plain


def test_the_api_answers_with_read_text(tiny_read_index):
    from fastapi.testclient import TestClient

    from crosskd.search.server import create_app
    root, recorded = tiny_read_index
    client = TestClient(create_app(Index.load(root)), base_url="http://127.0.0.1")
    body = client.get("/search", params={"caption": QUERY, "k": 18}).json()
    found = {hit["video_id"]: hit.get("read") for hit in body["results"]}
    assert found["video34"] == recorded["video34"] and found["video46"] == {"ocr": "BREAKING NEWS"}
    assert client.get("/videos/video46").json()["read"] == {"ocr": "BREAKING NEWS"}
    assert "read" not in client.get(f"/videos/{_unread(found)}").json()


def _unread(found: dict[str, dict | None]) -> str:
    """A video of the answer with nothing read or heard."""
    return next(vid for vid, read in found.items() if read is None)


def test_the_cli_table_shows_read_text_escaped(tiny_read_index, capsys):
    root = tiny_read_index[0]
    assert main(["search", str(root), "--caption", QUERY, "-k", "18"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "speech: storm \\x1b]0;pwned\\x07 hits \\x1b[2J the coast" in out
    assert "ocr: BREAKING NEWS" in out
    assert "speech: la la" in out and "la " * 1000 not in out  # shortened in the table
    assert main(["search", str(root), "--caption", QUERY, "-k", "18", "--json"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and json.loads(out)["results"]


def test_the_report_shows_read_text_html_escaped(tiny_read_index, tmp_path):
    assert main(["report", str(tiny_read_index[0]), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=&quot;window.__xss = 3&quot;&gt;" in page
    assert '<dl class="read"><dt>ocr</dt><dd>BREAKING NEWS</dd></dl>' in page
