"""`crosskd serve` against hostile input: index folders and dataset records that point
outside, markup posing as media, foreign Host headers, odd numbers, and server faults that
must not show their paths."""

from __future__ import annotations

import argparse
import logging
import os
import shutil

import pytest

pytest.importorskip("httpx", reason="the API tests use httpx (pip install 'crosskd[test]')")

from fastapi.testclient import TestClient  # noqa: E402

from crosskd.cli import main  # noqa: E402
from crosskd.commands.serve import allowed_hosts, host_name, page_url  # noqa: E402
from crosskd.errors import UserError  # noqa: E402
from crosskd.search import Index  # noqa: E402
from crosskd.search.media_sources import media_sources  # noqa: E402
from crosskd.search.media import FOLDER, TABLE, attach_media, sniff  # noqa: E402
from crosskd.search.server import create_app  # noqa: E402

MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64)
MARKUP = {".svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
          ".html": b"<!doctype html><script>alert(document.domain)</script>",
          ".js": b"alert(document.domain)"}
LOCAL = "http://127.0.0.1:8000"


@pytest.fixture
def index_root(tmp_path, tiny_collection):
    """A private copy of the tiny index, free to be given media."""
    root = tmp_path / "index"
    shutil.copytree(tiny_collection[3], root)
    return root


def client_of(root, **options) -> TestClient:
    return TestClient(create_app(Index.load(root)), base_url=LOCAL, **options)


def write(path, data: bytes):
    path.write_bytes(data)
    return path


# --- media: inside the index, by content -------------------------------------------------
def test_a_media_folder_linked_outside_the_index_is_not_served(tmp_path, index_root):
    attach_media(index_root, {"video34": {"video": write(tmp_path / "c.mp4", MP4),
                                          "thumbnail": write(tmp_path / "t.jpg", JPEG)}})
    outside = tmp_path / "elsewhere"
    shutil.move(index_root / FOLDER, outside)
    os.symlink(outside, index_root / FOLDER)
    client = client_of(index_root)
    assert client.get("/videos/video34").json()["media"] == []
    for kind in ("video", "thumbnail"):
        response = client.get(f"/videos/video34/{kind}")
        assert response.status_code == 404 and str(tmp_path) not in response.text


def test_media_are_served_with_the_type_their_content_shows_not_their_name(tmp_path,
                                                                           index_root):
    attach_media(index_root, {"video34": {"video": write(tmp_path / "clip.html", MP4),
                                          "thumbnail": write(tmp_path / "t.svg", JPEG)}})
    client = client_of(index_root)
    video = client.get("/videos/video34/video")
    assert video.headers["content-type"] == "video/mp4" and video.content == MP4
    assert video.headers["x-content-type-options"] == "nosniff"
    assert client.get("/videos/video34/thumbnail").headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize("suffix", sorted(MARKUP))
def test_markup_posing_as_media_is_left_out_at_build_time(tmp_path, index_root, caplog, suffix):
    evil = write(tmp_path / f"evil{suffix}", MARKUP[suffix])
    with caplog.at_level(logging.WARNING):
        attach_media(index_root, {"video34": {"video": evil, "thumbnail": evil}})
    assert (index_root / TABLE).read_text().strip() == "{}"
    assert list((index_root / FOLDER).iterdir()) == []
    assert "2 media file(s) left out" in caplog.text


@pytest.mark.parametrize("suffix", sorted(MARKUP))
def test_markup_placed_in_an_index_is_never_served(index_root, suffix):
    (index_root / FOLDER).mkdir()
    write(index_root / FOLDER / f"0-video{suffix}", MARKUP[suffix])
    write(index_root / FOLDER / "0-thumbnail.mp4", MP4)  # a video is no thumbnail
    (index_root / TABLE).write_text(
        f'{{"video34": {{"video": "0-video{suffix}", "thumbnail": "0-thumbnail.mp4"}}}}')
    client = client_of(index_root)
    assert client.get("/videos/video34").json()["media"] == []
    for kind in ("video", "thumbnail"):
        assert client.get(f"/videos/video34/{kind}").status_code == 404


@pytest.mark.parametrize("head, mime", [
    (MP4, "video/mp4"), (b"\x00\x00\x00\x14ftypqt  ", "video/quicktime"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video/webm"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x82\x88matroska", "video/x-matroska"),
    (b"OggS\x00\x02", "video/ogg"), (b"RIFF\x00\x00\x00\x00AVI LIST", "video/x-msvideo"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"), (JPEG, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n\x00", "image/png"), (b"GIF89a\x01\x00", "image/gif"),
    (b"\x47" + bytes(187) + b"\x47", "video/mp2t"),
    (MARKUP[".svg"], None), (MARKUP[".html"], None), (b"%PDF-1.7", None), (b"", None),
])
def test_media_types_are_recognised_by_their_first_bytes(head, mime):
    found = sniff(head)
    assert (found.mime if found else None) == mime


# --- the dataset record names media only inside the dataset ------------------------------
def _record(source=None, keyframe=None) -> dict:
    entry = {"source": source, "keyframe": {"file": keyframe} if keyframe else None}
    return {"videos": {"v": entry}}


@pytest.fixture
def dataset(tmp_path):
    """A dataset folder with one keyframe, and a secret file beside it."""
    data = tmp_path / "data"
    (data / "keyframes").mkdir(parents=True)
    write(data / "keyframes" / "v.jpg", JPEG)
    write(tmp_path / "secret.mp4", MP4)
    return data


@pytest.mark.parametrize("source, keyframe, field", [
    ("{tmp}/secret.mp4", None, "source"),
    ("../secret.mp4", None, "source"),
    ("keyframes/../../secret.mp4", None, "source"),
    (None, "{tmp}/secret.mp4", "keyframe file"),
    (None, "../secret.mp4", "keyframe file"),
    ("linked.mp4", None, "source"),
    (None, "keyframes/linked/secret.mp4", "keyframe file"),
])
def test_record_entries_outside_the_dataset_are_refused(tmp_path, dataset, source, keyframe,
                                                        field):
    os.symlink(tmp_path / "secret.mp4", dataset / "linked.mp4")
    os.symlink(tmp_path, dataset / "keyframes" / "linked")
    fill = {"tmp": tmp_path}
    record = _record(source and source.format(**fill), keyframe and keyframe.format(**fill))
    with pytest.raises(UserError) as refused:
        media_sources(record, dataset, ["v"])
    message = str(refused.value)
    assert f"extraction.json entry 'v' {field}" in message and "outside" in message
    assert "\n" not in message
    assert ("--media-root" in message) == (field == "source")


def test_videos_outside_the_dataset_come_only_from_a_media_root(tmp_path, dataset):
    record = _record(str(tmp_path / "secret.mp4"), "keyframes/v.jpg")
    found = media_sources(record, dataset, ["v"], [tmp_path])
    assert found == {"v": {"video": tmp_path / "secret.mp4",
                           "thumbnail": dataset / "keyframes" / "v.jpg"}}
    assert media_sources(_record("/nowhere/v.mp4", "keyframes/v.jpg"), dataset, ["v"]) == \
        {"v": {"thumbnail": dataset / "keyframes" / "v.jpg"}}  # not on this machine


# --- Host -----------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example",
                                  "localhost.evil.example:80", "[::2]:8000", ""])
def test_foreign_hosts_are_refused_without_details(index_root, host):
    response = client_of(index_root).get("/healthz", headers={"Host": host})
    assert response.status_code == 400
    assert "videos" not in response.text and (not host or host not in response.text)
    assert response.headers["x-content-type-options"] == "nosniff"


def test_allowed_hosts_are_loopback_the_listen_address_and_the_allowed_names():
    assert allowed_hosts("127.0.0.1") == ["localhost", "127.0.0.1", "[::1]"]
    assert allowed_hosts("0.0.0.0") == allowed_hosts("::") == allowed_hosts("127.0.0.1")
    assert allowed_hosts("192.168.1.5", ["Search.Lan"]) == \
        ["localhost", "127.0.0.1", "[::1]", "Search.Lan", "192.168.1.5"]
    assert host_name("Search.Lan") == "search.lan" and host_name("::1") == "[::1]"
    assert page_url("0.0.0.0", 8000) == "http://127.0.0.1:8000/"
    assert page_url("::1", 8000) == "http://[::1]:8000/"


def test_loopback_and_allowed_names_are_answered_with_any_port(index_root):
    app = create_app(Index.load(index_root), allowed_hosts("0.0.0.0", [host_name("search.lan")]))
    client = TestClient(app, base_url="http://search.lan:8000")
    for host in ("search.lan", "search.lan:80", "localhost", "localhost:8000",
                 "127.0.0.1:51234", "[::1]:8000", "LOCALHOST:80"):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
    assert client.get("/healthz", headers={"Host": "evil.example"}).status_code == 400


@pytest.mark.parametrize("text", ["evil.example:80", "http://evil.example", "a b", "٣.example",
                                  "", "*.*"])
def test_allow_host_takes_only_a_host_name_or_address(text):
    with pytest.raises(argparse.ArgumentTypeError, match="not a host name or IP address"):
        host_name(text)


@pytest.mark.parametrize("text", ["²", "٣", "８０", "80.0", "0", "65536", "1_000"])
def test_port_takes_ascii_digits_only(text, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "no-index", "--port", text])
    assert exit_info.value.code == 2
    assert "argument --port: port: " in capsys.readouterr().err


# --- numbers in requests ------------------------------------------------------------------
@pytest.mark.parametrize("url, message", [
    ("/search?caption=video34:0&k=%C2%B2", "k must be"),
    ("/search?caption=video34:0&k=%D9%A3", "k must be"),
    ("/search?caption=video34:0&k=%EF%BC%93", "k must be"),
    ("/search?caption=video34:0&k=1_0", "k must be"),
    ("/search?caption=video34:%C2%B2", "ASCII digits"),
    ("/search?caption=video34:%D9%A3", "ASCII digits"),
    ("/captions?video=video34&k=%C2%B2", "k must be"),
    ("/captions?video=video34&k=%D9%A3", "k must be"),
])
def test_non_ascii_numbers_get_a_400_with_a_message(index_root, url, message):
    response = client_of(index_root).get(url)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


@pytest.mark.parametrize("ranges", ["bytes=1_0-1_9", "bytes=\xb2-\xb3", "bytes=0x1-0x9",
                                    "bytes=5"])
def test_byte_ranges_take_ascii_digits_only(tmp_path, index_root, ranges):
    attach_media(index_root, {"video34": {"video": write(tmp_path / "c.mp4", MP4)}})
    client = client_of(index_root)
    response = client.get("/videos/video34/video", headers={"Range": ranges.encode("latin-1")})
    assert response.status_code == 400 and "ASCII digits" in response.json()["error"]
    part = client.get("/videos/video34/video", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == MP4[10:20]
    assert client.get("/videos/video34/video", headers={"Range": "bytes=-5"}).content == MP4[-5:]


# --- what error bodies say ----------------------------------------------------------------
def test_free_text_without_a_text_encoder_is_refused_without_cli_advice(index_root):
    response = client_of(index_root).get("/search", params={"q": "a dog"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert "caption=VIDEO_ID:INDEX" in error and "--" not in error and "crosskd" not in error


@pytest.mark.parametrize("fault, status", [
    (UserError("/srv/secret/weights.pt cannot be read; run crosskd index --out again"), 503),
    (OSError(5, "Input/output error", "/srv/secret/g0.vectors.npy"), 500),
])
def test_server_faults_get_a_5xx_naming_no_file(index_root, caplog, monkeypatch, fault, status):
    index = Index.load(index_root)

    def broken(*_, **__):
        raise fault

    monkeypatch.setattr(index, "rank", broken)
    client = TestClient(create_app(index), base_url=LOCAL, raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR):
        response = client.get("/search", params={"caption": "video34:0"})
    assert response.status_code == status
    assert "/srv" not in response.text and "crosskd" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    if status == 503:
        assert "/srv/secret/weights.pt" in caplog.text  # the detail is in the server's log
