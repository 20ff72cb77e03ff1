"""The HTTP API: the same answers as the CLI, and a 4xx with a message for every bad request."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("httpx", reason="the API tests use httpx (pip install 'crosskd[test]')")

from fastapi.testclient import TestClient  # noqa: E402

from crosskd.cli import main  # noqa: E402
from crosskd.search import Index  # noqa: E402
from crosskd.search.media import attach_media  # noqa: E402
from crosskd.search.server import create_app  # noqa: E402

#: the server answers loopback Host names only (TestClient's default is "testserver")
LOCAL = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def client(tiny_collection):
    return TestClient(create_app(Index.load(tiny_collection[3])), base_url=LOCAL)


def test_search_answers_as_the_cli_does(client, tiny_collection, capsys):
    response = client.get("/search", params={"caption": "video34:0", "k": 5})
    assert response.status_code == 200
    assert main(["search", str(tiny_collection[3]), "--caption", "video34:0", "-k", "5",
                 "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    body = response.json()
    assert [h["video_id"] for h in body["results"]] == [h["video_id"] for h in printed["results"]]
    assert [h["score"] for h in body["results"]] == [h["score"] for h in printed["results"]]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_health_page_metadata_and_video_to_text(client):
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["videos"] == 18 and health["free_text"] is False
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "textContent" in client.get("/static/app.js").text
    video = client.get("/videos/video34").json()
    assert video["video_id"] == "video34" and video["captions"] and video["media"] == []
    ranked = client.get("/captions", params={"video": "video34", "k": 3}).json()
    assert len(ranked["results"]) == 3


@pytest.mark.parametrize("url, status, message", [
    ("/search?q=", 400, "q is empty"),
    ("/search?q=%20%20", 400, "q is empty"),
    ("/search?q=" + "a" * 1200, 400, "at most 1000"),
    ("/search?q=" + "a" * 5000, 413, "at most 1000"),
    ("/search?q=%FF%FE", 400, "not valid UTF-8"),
    ("/search?caption=video34:0&k=0", 400, "k must be"),
    ("/search?caption=video34:0&k=101", 400, "k must be"),
    ("/search?caption=video34:0&k=ten", 400, "k must be"),
    ("/search?k=3", 400, "give one of"),
    ("/search?q=dog&caption=video34:0", 400, "give one of"),
    ("/search?q=a%20dog", 400, "caption=VIDEO_ID:INDEX"),
    ("/search?caption=nope:0", 404, "no video 'nope'"),
    ("/search?caption=video34:7", 404, "has no caption 7"),
    ("/search?caption=video34", 400, "VIDEO_ID:INDEX"),
    ("/videos/nope", 404, "no video"),
    ("/videos/..%2F..%2Fetc%2Fpasswd", 400, "no slashes"),
    ("/videos/%2E%2E", 400, "no slashes"),
    ("/videos/video34/video", 404, "no 'video' file"),
    ("/videos/video34/..%2Fmanifest.json", 400, "no slashes"),
    ("/static/..%2Fserver.py", 404, "Not Found"),
    ("/videos/video34/..%2F..%2Fmanifest.json", 400, "no slashes"),
    ("/static/index.py", 404, "no such page file"),
    ("/captions?video=nope", 404, "no video"),
])
def test_bad_requests_get_a_4xx_with_a_message(client, url, status, message):
    response = client.get(url)
    assert response.status_code == status, response.text
    if message:
        assert message in response.json()["error"]


def test_media_come_from_the_index_folder_with_range_requests(tmp_path, tiny_collection):
    index = Index.load(tiny_collection[3])
    root = tmp_path / "index"
    index.save(root)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 40)  # an MP4 header
    thumb = tmp_path / "thumb.jpg"
    thumb.write_bytes(b"\xff\xd8\xffjpeg")
    attach_media(root, {"video34": {"video": clip, "thumbnail": thumb}})
    client = TestClient(create_app(Index.load(root)), base_url=LOCAL)
    assert client.get("/videos/video34").json()["media"] == ["video", "thumbnail"]
    part = client.get("/videos/video34/video", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == clip.read_bytes()[10:20]
    assert client.get("/videos/video34/thumbnail").content == b"\xff\xd8\xffjpeg"
    hit = client.get("/search", params={"caption": "video34:0", "k": 18}).json()["results"]
    assert {h["video_id"]: h["media"] for h in hit}["video34"] == ["video", "thumbnail"]


@pytest.fixture(scope="module")
def qbnorm_client(tiny_qbnorm_index):
    return TestClient(create_app(Index.load(tiny_qbnorm_index[0])), base_url=LOCAL)


def test_health_says_whether_the_index_ranks_with_qbnorm(client, qbnorm_client):
    assert client.get("/healthz").json()["qbnorm"] is None
    qbnorm = qbnorm_client.get("/healthz").json()["qbnorm"]
    assert qbnorm["beta"] == 20.0 and qbnorm["bank_size"] == 106
    assert 0 < qbnorm["active_videos"] <= 18


@pytest.mark.parametrize("flag, cli", [("1", []), ("0", ["--no-qbnorm"]), (None, [])])
def test_qbnorm_parameter_answers_as_the_cli_flag(qbnorm_client, tiny_qbnorm_index, capsys,
                                                  flag, cli):
    params = {"caption": "video46:0", "k": 6, **({} if flag is None else {"qbnorm": flag})}
    body = qbnorm_client.get("/search", params=params).json()
    assert main(["search", str(tiny_qbnorm_index[0]), "--caption", "video46:0", "-k", "6",
                 "--json", *cli]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert body["query"]["qbnorm"] == printed["query"]["qbnorm"]
    assert body["query"]["qbnorm"]["requested"] is (flag != "0")
    assert [(h["video_id"], h["score"], h["normalised_score"]) for h in body["results"]] == \
        [(h["video_id"], h["score"], h["normalised_score"]) for h in printed["results"]]


@pytest.mark.parametrize("value", ["", "2", "yes", "true", "١", " 1", "0x1"])
def test_a_bad_qbnorm_parameter_is_400(qbnorm_client, client, value):
    for app in (qbnorm_client, client):
        response = app.get("/search", params={"caption": "video34:0", "qbnorm": value})
        assert response.status_code == 400
        assert "qbnorm must be 0 or 1" in response.json()["error"]
