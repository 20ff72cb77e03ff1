"""`crosskd download features` against a local server: verified, resumed, refused, checked, offline."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from crosskd.cli import main
from crosskd.config import load_config
from crosskd.download import features
from crosskd.download.archive import UnsafeArchiveError
from crosskd.download.features import TARBALLS, fetch_features, tarball_url
from crosskd.download.http import ChecksumError, DownloadError, part_path
from crosskd.download.required import missing_files, published_config_name, required_files

FEAT = "data/MSRVTT/high-quality/structured-symlinks"


@pytest.fixture
def layout_files(config_dir) -> dict[str, bytes]:
    """One small file for every file the two published MSRVTT configs need, in the tarball layout."""
    names = set()
    for variant in ("cecap", "ttcap"):
        names |= set(required_files(load_config(config_dir / published_config_name("MSRVTT",
                                                                                    variant))))
    return {f"{FEAT}/{name}": f"contents of {name}\n".encode() * 50 for name in sorted(names)}


def _serve(server, monkeypatch, body: bytes, sha1: str | None = None, **options):
    """Serve `body` as the MSRVTT tarball and accept `sha1` (default: its own) as the release."""
    monkeypatch.setenv(features.BASE_URL_ENV, server.base_url)
    table = {"MSRVTT": dataclasses.replace(TARBALLS["MSRVTT"], releases={
        sha1 or hashlib.sha1(body).hexdigest(): "current release",
        "0" * 40: "older release"})}
    server.add("/" + table["MSRVTT"].archive_name, body, **options)
    return table


def test_full_download_unpacks_into_the_config_layout(server, monkeypatch, tmp_path, tarball,
                                                      layout_files, config_dir):
    table = _serve(server, monkeypatch, tarball(layout_files))
    result = fetch_features("msrvtt", tmp_path, tarballs=table, progress=False)
    assert result.dataset_dir == tmp_path / "MSRVTT" and result.release == "current release"
    for name, content in layout_files.items():
        assert (tmp_path / name.removeprefix("data/")).read_bytes() == content
    assert not (tmp_path / "MSRVTT" / table["MSRVTT"].archive_name).exists()
    config = load_config(config_dir / published_config_name("MSRVTT", "ttcap"))
    assert missing_files(result.dataset_dir, config) == []

    again = fetch_features("MSRVTT", tmp_path, tarballs=table, progress=False)
    assert not again.downloaded and len(server.requests) == 1


def test_cut_download_resumes_and_older_release_is_named(server, monkeypatch, tmp_path, tarball,
                                                         layout_files):
    body = tarball(layout_files)
    table = _serve(server, monkeypatch, body, cut_after=len(body) // 2)
    older = dataclasses.replace(table["MSRVTT"], releases={
        "f" * 40: "current release", hashlib.sha1(body).hexdigest(): "older release"})
    with pytest.raises(DownloadError, match="rerun"):
        fetch_features("MSRVTT", tmp_path, tarballs={"MSRVTT": older}, retries=0, progress=False)
    assert not (tmp_path / "MSRVTT" / "high-quality").exists()
    result = fetch_features("MSRVTT", tmp_path, tarballs={"MSRVTT": older}, retries=0,
                            progress=False)
    assert result.release == "older release"
    assert server.requests[1][1] == f"bytes={len(body) // 2}-"


def test_corrupted_tarball_is_rejected_and_nothing_is_unpacked(server, monkeypatch, tmp_path,
                                                               tarball, layout_files):
    good = tarball(layout_files)
    corrupted = good[:100] + bytes([good[100] ^ 0xFF]) + good[101:]
    table = _serve(server, monkeypatch, corrupted, sha1=hashlib.sha1(good).hexdigest())
    with pytest.raises(ChecksumError, match="expected") as err:
        fetch_features("MSRVTT", tmp_path, tarballs=table, progress=False)
    assert tarball_url(table["MSRVTT"]) in str(err.value)
    archive = tmp_path / "MSRVTT" / table["MSRVTT"].archive_name
    assert not archive.exists() and not part_path(archive).exists()
    assert not (tmp_path / "MSRVTT" / "high-quality").exists()


def test_tarball_with_parent_member_is_refused(server, monkeypatch, tmp_path, tarball):
    table = _serve(server, monkeypatch, tarball({f"{FEAT}/ok.txt": b"ok",
                                                 "data/MSRVTT/../../../evil.txt": b"x"}))
    with pytest.raises(UnsafeArchiveError):
        fetch_features("MSRVTT", tmp_path / "root", tarballs=table, progress=False)
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "root" / "MSRVTT" / "high-quality").exists()


def test_cli_reports_present_and_missing_files(server, monkeypatch, tmp_path, tarball,
                                               layout_files, config_dir, capsys):
    missing = f"{FEAT}/teachers/train-full-ce-refined-text-w2v.pkl"
    partial = {name: body for name, body in layout_files.items() if name != missing}
    table = _serve(server, monkeypatch, tarball(partial))
    monkeypatch.setitem(TARBALLS, "MSRVTT", table["MSRVTT"])
    status = main(["download", "features", "MSRVTT", "--root", str(tmp_path),
                   "--config-dir", str(config_dir)])
    out = capsys.readouterr().out
    assert status == 1
    assert "all files needed by msrvtt-train-gpt2-xl-finetuned-mte-adam-cecap.json" in out
    assert "1 file(s) needed by msrvtt-train-gpt2-xl-finetuned-mte-adam-ttcap.json" in out
    assert "teachers/train-full-ce-refined-text-w2v.pkl" in out


def test_cli_offline_ends_with_one_line_and_no_file(closed_port_url, monkeypatch, tmp_path,
                                                    capsys):
    monkeypatch.setenv(features.BASE_URL_ENV, closed_port_url)
    status = main(["download", "features", "DiDeMo", "--root", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert f"{closed_port_url}/high-quality-DiDeMo-experts.tar.gz" in err and "network" in err
    assert not any(path.is_file() for path in tmp_path.rglob("*"))


def test_published_urls_have_both_slashes(monkeypatch):
    monkeypatch.delenv(features.BASE_URL_ENV, raising=False)
    assert tarball_url(TARBALLS["ActivityNet"]) == (
        "http://www.robots.ox.ac.uk/~vgg/research/teachtext/data-hq/high-quality/"
        "high-quality-activity-net-experts.tar.gz")
