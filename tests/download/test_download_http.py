"""Resumable verified downloads against a local HTTP server: full, cut and resumed, rejected, failed."""

from __future__ import annotations

import hashlib

import pytest

from crosskd.download.http import ChecksumError, DownloadError, download, part_path

BODY = bytes(range(256)) * 4096  # 1 MiB, distinct bytes at every offset


def test_full_download_writes_the_bytes_and_their_digests(server, tmp_path):
    url = server.add("/file.bin", BODY)
    result = download(url, tmp_path / "file.bin", progress=False)
    assert (tmp_path / "file.bin").read_bytes() == BODY
    assert not part_path(tmp_path / "file.bin").exists()
    assert result.digests == {"sha1": hashlib.sha1(BODY).hexdigest(),
                              "sha256": hashlib.sha256(BODY).hexdigest()}
    assert result.size == len(BODY)


def test_cut_download_keeps_a_part_file_and_the_next_call_resumes_with_range(server, tmp_path):
    half = len(BODY) // 2
    url = server.add("/file.bin", BODY, cut_after=half)
    dest = tmp_path / "file.bin"
    with pytest.raises(DownloadError, match="rerun the same command to resume") as err:
        download(url, dest, retries=0, progress=False)
    assert "\n" not in str(err.value)
    assert not dest.exists()
    assert part_path(dest).read_bytes() == BODY[:half]

    result = download(url, dest, retries=0, progress=False)
    assert dest.read_bytes() == BODY
    assert server.requests[-1] == ("/file.bin", f"bytes={half}-")
    assert result.digests["sha1"] == hashlib.sha1(BODY).hexdigest()


def test_a_cut_is_resumed_within_one_call_when_retries_allow(server, tmp_path):
    url = server.add("/file.bin", BODY, cut_after=1000)
    download(url, tmp_path / "file.bin", retries=1, retry_wait=0, progress=False)
    assert (tmp_path / "file.bin").read_bytes() == BODY
    assert [rng for _, rng in server.requests] == [None, "bytes=1000-"]


def test_a_server_that_ignores_range_restarts_from_scratch(server, tmp_path):
    url = server.add("/file.bin", BODY, honour_range=False)
    dest = tmp_path / "file.bin"
    part_path(dest).write_bytes(b"stale bytes from another file")
    result = download(url, dest, progress=False)
    assert dest.read_bytes() == BODY
    assert result.digests["sha1"] == hashlib.sha1(BODY).hexdigest()


def test_a_complete_part_file_is_finished_without_downloading_again(server, tmp_path):
    url = server.add("/file.bin", BODY)
    dest = tmp_path / "file.bin"
    part_path(dest).write_bytes(BODY)
    result = download(url, dest, progress=False)
    assert dest.read_bytes() == BODY
    assert result.digests["sha256"] == hashlib.sha256(BODY).hexdigest()
    assert server.requests == [("/file.bin", f"bytes={len(BODY)}-")]


def test_rejected_checksum_deletes_the_part_and_never_creates_the_file(server, tmp_path):
    url = server.add("/file.bin", BODY)
    dest = tmp_path / "file.bin"

    def reject(digests):
        raise ChecksumError(f"bad sha1 {digests['sha1']}")

    with pytest.raises(ChecksumError):
        download(url, dest, verify=reject, progress=False)
    assert not dest.exists() and not part_path(dest).exists()


def test_http_error_is_one_line_with_url_and_status(server, tmp_path):
    url = server.base_url + "/missing.bin"
    with pytest.raises(DownloadError) as err:
        download(url, tmp_path / "missing.bin", progress=False)
    message = str(err.value)
    assert url in message and "HTTP 404" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_network_error_is_one_line_with_url_and_advice(closed_port_url, tmp_path):
    url = closed_port_url + "/file.bin"
    with pytest.raises(DownloadError) as err:
        download(url, tmp_path / "file.bin", progress=False)
    message = str(err.value)
    assert url in message and "network error" in message and "\n" not in message
    assert not (tmp_path / "file.bin").exists()


def test_a_length_header_that_is_not_ascii_digits_is_taken_as_unknown(server, tmp_path):
    """A hostile server's Content-Length of '²' passes str.isdigit but not int(): the length
    is unknown, not a ValueError traceback."""
    url = server.add("/file.bin", BODY, length_header="\u00b2")
    download(url, tmp_path / "file.bin", progress=False)
    assert (tmp_path / "file.bin").read_bytes() == BODY
