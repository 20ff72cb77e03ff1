"""Resumable, verified HTTP downloads: stream to `<name>.part`, resume with Range, rename when verified.

Only the standard library is used (urllib). A file appears under its final name only after
every byte arrived and the caller's check of its digests passed; an interrupted download
leaves `<name>.part` behind, which the next call resumes.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from tqdm import tqdm

import crosskd
from crosskd.errors import UserError

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
USER_AGENT = f"crosskd/{crosskd.__version__}"
DIGESTS = ("sha1", "sha256")

Digests = Mapping[str, str]
Verifier = Callable[[Digests], None]


class DownloadError(UserError):
    """A download that could not complete: the message names the URL, the cause and the fix."""


class ChecksumError(DownloadError):
    """Downloaded bytes whose digest is not the published one (the partial file is deleted)."""


class _Interrupted(Exception):
    """The connection ended before the announced length; the `.part` file can be resumed."""


@dataclass(frozen=True)
class Downloaded:
    """A completed, verified download."""

    path: Path
    size: int
    digests: dict[str, str]


def part_path(dest: Path) -> Path:
    """Where the bytes of `dest` accumulate until the download is complete and verified."""
    return dest.with_name(dest.name + ".part")


def build_opener() -> urllib.request.OpenerDirector:
    """An opener with a cookie jar, so a confirm step (Google Drive) can hand its cookie on."""
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor())


def open_url(url: str, opener: urllib.request.OpenerDirector, *, offset: int = 0,
             timeout: float = 60.0) -> http.client.HTTPResponse:
    """GET `url` (from byte `offset` on when > 0); HTTP and network errors propagate."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    return opener.open(request, timeout=timeout)


def _content_range_total(header: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) from a `Content-Range: bytes a-b/total` or `bytes */total` header."""
    match = re.fullmatch(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", (header or "").strip(), re.ASCII)
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return start, total


def _hash_existing(path: Path, hashers: list, progress: bool) -> None:
    """Feed the bytes already on disk into the hashers (resuming, or re-checking a file)."""
    size = path.stat().st_size
    with open(path, "rb") as handle, tqdm(total=size, unit="B", unit_scale=True,
                                          desc=f"checking {path.name}", disable=not progress,
                                          leave=False) as bar:
        while chunk := handle.read(CHUNK_BYTES):
            for hasher in hashers:
                hasher.update(chunk)
            bar.update(len(chunk))


def file_digests(path: Path, progress: bool = False) -> dict[str, str]:
    """sha1 and sha256 of a file on disk, read in chunks."""
    hashers = [hashlib.new(name) for name in DIGESTS]
    _hash_existing(path, hashers, progress)
    return {hasher.name: hasher.hexdigest() for hasher in hashers}


def _start(url: str, part: Path, opener: urllib.request.OpenerDirector,
           timeout: float) -> tuple[http.client.HTTPResponse | None, int, int | None]:
    """Open the transfer for what `part` lacks: (response or None when complete, offset, total)."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = open_url(url, opener, offset=offset, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code != 416 or not offset:
            raise
        _, total = _content_range_total(err.headers.get("Content-Range"))
        err.close()
        if total == offset:
            return None, offset, total
        log.info("%s: the server refused to resume at byte %d; starting again", url, offset)
        part.unlink()
        return _start(url, part, opener, timeout)
    if offset and response.status == 206:
        start, total = _content_range_total(response.headers.get("Content-Range"))
        if start == offset:
            return response, offset, total
    if offset:
        log.info("%s: the server does not resume (HTTP %d); starting again", url, response.status)
    length = response.headers.get("Content-Length")
    return response, 0, int(length) if length and length.isascii() and length.isdigit() else None


def _read(response: http.client.HTTPResponse, received: int) -> bytes:
    """The next chunk of the body; a broken connection becomes _Interrupted (resumable)."""
    try:
        return response.read(CHUNK_BYTES)
    except (http.client.HTTPException, OSError) as err:
        raise _Interrupted(f"connection lost at byte {received}: {err}") from err


def _transfer(url: str, part: Path, hashers: list, opener: urllib.request.OpenerDirector,
              timeout: float, progress: bool) -> None:
    """Append the missing bytes of `url` to `part`; raise _Interrupted when the stream ends early."""
    response, offset, total = _start(url, part, opener, timeout)
    if offset:
        _hash_existing(part, hashers, progress)
    if response is None:
        return
    received = offset
    with response, open(part, "ab" if offset else "wb") as handle, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name.removesuffix(".part"), disable=not progress) as bar:
        while chunk := _read(response, received):
            try:
                handle.write(chunk)
            except OSError as err:
                raise DownloadError(f"cannot write {part}: {err.strerror or err}; free some "
                                    "space or choose another folder, then rerun") from None
            for hasher in hashers:
                hasher.update(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    if total is not None and received < total:
        raise _Interrupted(f"connection closed at byte {received} of {total}")


def network_error(url: str, err: BaseException) -> DownloadError:
    """One line: the URL, the HTTP status or network error, and what to do about it."""
    if isinstance(err, urllib.error.HTTPError):
        return DownloadError(f"GET {url} failed: HTTP {err.code} {err.reason}; the file may have "
                             "moved: check the URL in docs/DOWNLOADS.md or try again later")
    reason = getattr(err, "reason", err)
    return DownloadError(f"GET {url} failed: network error ({reason}); check your internet "
                         "connection or proxy, then rerun the same command")


def download(url: str, dest: str | Path, *, verify: Verifier | None = None, retries: int = 3,
             retry_wait: float = 2.0, timeout: float = 60.0,
             opener: urllib.request.OpenerDirector | None = None,
             progress: bool = True) -> Downloaded:
    """Download `url` to `dest` through `dest.part`, resuming, then verify and rename.

    `verify` receives the sha1/sha256 hex digests and raises ChecksumError to reject the bytes
    (the `.part` file is then deleted, since resuming it could not help). Interrupted
    transfers are resumed up to `retries` times; after that `.part` stays for the next call.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    opener = opener or build_opener()
    for attempt in range(retries + 1):
        hashers = [hashlib.new(name) for name in DIGESTS]
        try:
            _transfer(url, part, hashers, opener, timeout, progress)
            break
        except _Interrupted as err:
            if attempt == retries:
                size = part.stat().st_size if part.exists() else 0
                raise DownloadError(f"GET {url} interrupted ({err}); {size} bytes kept in {part}: "
                                    "rerun the same command to resume") from None
            log.warning("%s: %s; resuming (attempt %d of %d)", url, err, attempt + 1, retries)
            time.sleep(retry_wait * (attempt + 1))
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            raise network_error(url, err) from None
    digests = {hasher.name: hasher.hexdigest() for hasher in hashers}
    if verify is not None:
        try:
            verify(digests)
        except ChecksumError:
            part.unlink(missing_ok=True)
            raise
    size = part.stat().st_size
    os.replace(part, dest)
    log.info("downloaded %s (%d bytes, sha1 %s)", dest, size, digests["sha1"])
    return Downloaded(dest, size, digests)
