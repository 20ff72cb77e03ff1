"""Safe unpacking of downloaded tarballs: regular files and folders only, never outside the target.

Every member is checked by our own rules (no absolute paths, no `..`, no links or devices,
nothing that resolves outside the target) and, where Python offers it, also extracted through
tarfile's "data" filter, so the behaviour is the same on Python versions with and without it.
Members are unpacked into a staging folder and moved into place only when the whole archive
passed, so a refused archive leaves nothing behind.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from crosskd.diskwrites import reported_write
from crosskd.errors import UserError

log = logging.getLogger(__name__)

_HAS_FILTERS = hasattr(tarfile, "data_filter")


class UnsafeArchiveError(UserError):
    """An archive member that could escape the target folder or is a link/device."""


class CorruptArchiveError(UserError):
    """An archive that cannot be read to the end."""


def member_path(member: tarfile.TarInfo, strip_prefix: str = "") -> PurePosixPath | None:
    """The member's safe relative path (prefix removed), None for the prefix folder itself.

    Raises UnsafeArchiveError for links, devices, absolute paths and `..` components.
    """
    name = member.name.replace("\\", "/")
    if not (member.isfile() or member.isdir()):
        kind = "link" if (member.issym() or member.islnk()) else "special file"
        raise UnsafeArchiveError(f"archive member {member.name!r} is a {kind}; only regular "
                                 "files and folders are accepted")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"archive member {member.name!r} has an absolute path")
    parts = [part for part in PurePosixPath(name).parts if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"archive member {member.name!r} points outside the target "
                                 "folder ('..')")
    prefix = [part for part in PurePosixPath(strip_prefix).parts if part not in ("", ".")]
    if prefix and parts[:len(prefix)] == prefix:
        parts = parts[len(prefix):]
    return PurePosixPath(*parts) if parts else None


def _inside(root: Path, relative: PurePosixPath) -> Path:
    """`root / relative`, refusing anything that resolves outside `root` (e.g. via a symlink on disk)."""
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()):
        raise UnsafeArchiveError(f"archive member {relative} would be written outside {root}")
    return target


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, relative: PurePosixPath,
                    staging: Path) -> None:
    """Write one checked regular file under `staging` with its rewritten name."""
    _inside(staging, relative)
    renamed = copy.copy(member)
    renamed.name = relative.as_posix()
    options = {"filter": "data"} if _HAS_FILTERS else {"set_attrs": False}
    tar.extract(renamed, staging, **options)


def _move_into_place(staging: Path, dest: Path) -> list[Path]:
    """Move every staged file to the same relative place under `dest` (replacing old copies)."""
    moved = []
    for source in sorted(p for p in staging.rglob("*") if p.is_file()):
        relative = source.relative_to(staging)
        target = _inside(dest, PurePosixPath(relative.as_posix()))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        moved.append(target)
    return moved


def _unpacked_bytes(archive: Path) -> int | None:
    """The size of the archive's regular files (None when it cannot be listed cheaply)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            return sum(member.size for member in tar if member.isfile())
    except (tarfile.TarError, EOFError, OSError):
        return None


def safe_unpack(archive: str | Path, dest: str | Path, *, strip_prefix: str = "",
                progress: bool = True) -> list[Path]:
    """Unpack `archive` under `dest` (dropping `strip_prefix` from member names); return the files.

    The whole archive is refused (nothing written under `dest`) if any member is unsafe.
    """
    archive, dest = Path(archive), Path(dest)
    staging = dest / f".unpacking-{archive.name}"
    fix = (f"nothing was unpacked; free space there (or choose another folder) and run the "
           f"command again - {archive} is kept")
    try:
        with reported_write(dest, fix, needed=lambda: _unpacked_bytes(archive),
                            action="unpack into"):
            dest.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            with tarfile.open(archive, "r:*") as tar, tqdm(
                    desc=f"unpacking {archive.name}", unit=" files", disable=not progress) as bar:
                for member in tar:
                    relative = member_path(member, strip_prefix)
                    if relative is not None and member.isfile():
                        _extract_member(tar, member, relative, staging)
                    bar.update(1)
            files = _move_into_place(staging, dest)
    except (tarfile.TarError, EOFError) as err:
        raise CorruptArchiveError(f"cannot read {archive}: {err}; delete it and download "
                                  "it again") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("unpacked %d files from %s into %s", len(files), archive, dest)
    return files
