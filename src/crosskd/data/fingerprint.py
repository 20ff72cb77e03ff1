"""Content fingerprints of feature files: a cache entry follows the file's bytes, not its mtime.

A file's sha256 is computed once per stat signature (path, size, mtime, ctime, inode, device)
and recorded in the cache folder; later loads only `stat` the file. `cp -p`, tar and
`rsync -t` restore the mtime of a replaced file, but not its ctime (the kernel sets it on
every change and offers no call to set it back), so a same-size replacement changes the
signature and is hashed again; a changed hash means a new cache entry. A file changed in the
last two seconds is not recorded (a coarse filesystem clock could give its next change the
same times) and is hashed again on the next load. Hashing is one sequential read (about
1 GB/s on the development machine: benchmarks/cache_fingerprint.py, docs/PERFORMANCE.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from pathlib import Path

from crosskd.data.errors import DataError

log = logging.getLogger(__name__)

RECORDS = ".fingerprints"
RACY_SECONDS = 2.0
_DIGEST = re.compile(r"[0-9a-f]{64}")
_CHUNK = 8 << 20


def signature(path: Path) -> dict[str, int | str]:
    """What `stat` says about `path`; any change to its content changes at least ctime."""
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime": stat.st_mtime_ns,
            "ctime": stat.st_ctime_ns, "inode": stat.st_ino, "device": stat.st_dev}


def content_digest(path: Path) -> str:
    """sha256 of the file's bytes, read in 8 MiB pieces."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(block)
    except OSError as err:
        raise DataError(f"cannot read {path} ({err.strerror or err}); check that the file "
                        "exists and that you may read it") from None
    return digest.hexdigest()


def _record_path(cache_dir: Path, stat: dict[str, int | str]) -> Path:
    name = hashlib.sha256(json.dumps(stat, sort_keys=True).encode()).hexdigest()[:32]
    return cache_dir / RECORDS / name


def _recorded(record: Path) -> str | None:
    """The digest a record holds; None when it is absent or damaged (then the file is hashed)."""
    try:
        text = record.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if _DIGEST.fullmatch(text) else None


def _record(record: Path, digest: str) -> None:
    """Write the record atomically; a failure only costs a hash on the next load."""
    tmp = record.with_name(f".{record.name}.{os.getpid()}.tmp")
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(digest, encoding="ascii")
        os.replace(tmp, record)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        log.debug("fingerprint of %s not recorded (%s)", record, err)


def fingerprint(path: Path, cache_dir: Path) -> tuple[str, dict[str, int | str]]:
    """(sha256 of `path`, the stat signature it was taken under), hashing only when needed."""
    stat = signature(path)
    record = _record_path(cache_dir, stat)
    digest = _recorded(record)
    if digest is not None:
        return digest, stat
    digest = content_digest(path)
    newest = max(int(stat["mtime"]), int(stat["ctime"])) / 1e9
    if signature(path) == stat and time.time() - newest >= RACY_SECONDS:
        _record(record, digest)
    return digest, stat
