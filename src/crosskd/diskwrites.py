"""Write failures (a full disk, a read-only filesystem, a quota) as one line naming the file.

Libraries report a full disk in several ways: `OSError(ENOSPC)` from Python's own writes, an
`OSError` without an errno from numpy ("1000000 requested and 131056 written"), and a
`RuntimeError` from torch's zip writer ("unexpected pos 704 vs 598"). `reported_write` turns
all of them into a `DiskWriteError` saying which file, why, how much space it needed where
known, and what to do; every caller keeps its own guarantee that no partial file is left.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from pathlib import Path
from typing import Callable, Iterator, Union

from crosskd.errors import UserError

# torch.save's zip writer raises RuntimeError when a write comes up short
_TORCH_WRITE_FAILURE = re.compile(r"unexpected pos|file write failed|PytorchStreamWriter failed")
_NO_SPACE = "No space left on device"
DISK_FULL_OR_READ_ONLY = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
_LOW_SPACE = 1 << 20  # a short write with less than this left is taken for a full disk


Needed = Union[int, Callable[[], "int | None"], None]  # a callable is only asked on failure


class DiskWriteError(UserError):
    """A file could not be written (disk full, read-only, no permission, ...)."""


def is_write_failure(err: BaseException) -> bool:
    """True for the exceptions a failed write raises (OSError, torch's short-write errors)."""
    return isinstance(err, OSError) or (isinstance(err, RuntimeError)
                                        and bool(_TORCH_WRITE_FAILURE.search(str(err))))


def free_bytes(path: str | Path) -> int | None:
    """Space available to us on the filesystem holding `path` (or its nearest existing parent)."""
    path = Path(path).absolute()
    for candidate in (path, *path.parents):
        try:
            stat = os.statvfs(candidate)
        except OSError:
            continue
        return stat.f_bavail * stat.f_frsize
    return None


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def _reason(err: BaseException, path: Path, needed: int | None) -> str:
    """The cause in a few words: the OS's wording, or a full disk where the evidence says so."""
    code = getattr(err, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return _NO_SPACE if code == errno.ENOSPC else "disk quota exceeded"
    if isinstance(err, (FileExistsError, NotADirectoryError)):
        return "part of the path is a file, not a folder"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    free = free_bytes(path)
    if free is not None and (free < _LOW_SPACE or (needed is not None and free < needed)):
        return _NO_SPACE
    return f"the write was cut short: {str(err).strip().splitlines()[-1][:120]}"


def write_error(path: str | Path, err: BaseException, fix: str, needed: int | None = None,
                action: str = "write") -> DiskWriteError:
    """One line: `cannot <action> <path> (<reason>[; <free> free, about <needed> needed]); <fix>`."""
    path = Path(path)
    reason = _reason(err, path, needed)
    if reason in (_NO_SPACE, "disk quota exceeded"):
        free = free_bytes(path)
        space = [f"{_mib(free)} free" if free is not None else "",
                 f"about {_mib(needed)} needed" if needed else ""]
        if any(space):
            reason += "; " + ", ".join(part for part in space if part)
    return DiskWriteError(f"cannot {action} {path} ({reason}); {fix}")


@contextlib.contextmanager
def reported_write(path: str | Path, fix: str, needed: Needed = None,
                   action: str = "write") -> Iterator[None]:
    """Turn a failed write inside the block into a DiskWriteError about `path`."""
    try:
        yield
    except DiskWriteError:
        raise
    except (OSError, RuntimeError) as err:
        if not is_write_failure(err):
            raise
        size = needed() if callable(needed) else needed
        raise write_error(path, err, fix, size, action) from None


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write; renamed over `path` when the block succeeds,
    deleted when it fails, so `path` is never half written. (No fsync: this guards against a
    full disk, not power loss; run checkpoints are fsynced by their writer.)"""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | Path, text: str, fix: str) -> Path:
    """Write a small text file through `atomic_path`; a failure is a DiskWriteError."""
    path = Path(path)
    with reported_write(path, fix, needed=len(text.encode("utf-8"))), atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)  # a full disk fails here or when closing, before the rename
    return path
