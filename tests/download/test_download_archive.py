"""Safe unpacking: only regular files and folders, never outside the target, all-or-nothing."""

from __future__ import annotations

import tarfile

import pytest
from hypothesis import given, strategies as st

from crosskd.download.archive import (CorruptArchiveError, UnsafeArchiveError, member_path,
                                      safe_unpack)

PREFIX = "data/MSRVTT"


def _write(tmp_path, tarball, entries):
    path = tmp_path / "archive.tar.gz"
    path.write_bytes(tarball(entries))
    return path


def test_files_land_under_the_target_with_the_prefix_removed(tmp_path, tarball):
    archive = _write(tmp_path, tarball, {
        f"{PREFIX}/high-quality/structured-symlinks/train_list_full.txt": b"video1\n",
        f"{PREFIX}/high-quality/structured-symlinks/aggregated_speech/speech-w2v.pickle": b"x",
    })
    dest = tmp_path / "out"
    files = safe_unpack(archive, dest, strip_prefix=PREFIX, progress=False)
    root = dest / "high-quality" / "structured-symlinks"
    assert sorted(files) == sorted([root / "train_list_full.txt",
                                    root / "aggregated_speech" / "speech-w2v.pickle"])
    assert (root / "train_list_full.txt").read_bytes() == b"video1\n"
    assert [p.name for p in dest.iterdir()] == ["high-quality"]  # staging folder removed


@pytest.mark.parametrize("bad_name", ["../escaped.txt", f"{PREFIX}/../../escaped.txt",
                                      "/tmp/escaped-absolute.txt", "a/../../escaped.txt"])
def test_members_escaping_the_target_refuse_the_whole_archive(tmp_path, tarball, bad_name):
    archive = _write(tmp_path, tarball, {f"{PREFIX}/good.txt": b"ok", bad_name: b"evil"})
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="escaped"):
        safe_unpack(archive, dest, strip_prefix=PREFIX, progress=False)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "escaped.txt").exists()


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_link_members_are_refused(tmp_path, tarball, kind):
    archive = _write(tmp_path, tarball, {f"{PREFIX}/link.pickle": (kind, "/etc/passwd")})
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="is a link"):
        safe_unpack(archive, dest, strip_prefix=PREFIX, progress=False)
    assert list(dest.iterdir()) == []


def test_device_members_are_refused():
    member = tarfile.TarInfo("dev/null-copy")
    member.type = tarfile.CHRTYPE
    with pytest.raises(UnsafeArchiveError, match="special file"):
        member_path(member)


def test_an_existing_symlink_in_the_target_cannot_redirect_writes(tmp_path, tarball):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "high-quality").symlink_to(outside)
    archive = _write(tmp_path, tarball, {f"{PREFIX}/high-quality/file.txt": b"x"})
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_unpack(archive, dest, strip_prefix=PREFIX, progress=False)
    assert list(outside.iterdir()) == []


def test_a_truncated_archive_is_reported_as_corrupt(tmp_path, tarball):
    data = tarball({f"{PREFIX}/file.bin": bytes(range(256)) * 400})
    archive = tmp_path / "archive.tar.gz"
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptArchiveError, match="download it again"):
        safe_unpack(archive, tmp_path / "out", progress=False)


@given(st.lists(st.sampled_from(["a", "b", "..", ".", "", "data", "MSRVTT"]), min_size=1,
                max_size=6))
def test_accepted_member_paths_never_leave_the_target(parts):
    member = tarfile.TarInfo("/".join(parts))
    member.type = tarfile.REGTYPE
    try:
        relative = member_path(member, strip_prefix=PREFIX)
    except UnsafeArchiveError:
        assert ".." in parts or member.name.startswith("/")
        return
    assert relative is None or (".." not in relative.parts and not relative.is_absolute())
