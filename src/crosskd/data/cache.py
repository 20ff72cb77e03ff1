"""The packed-feature cache as a user sees it: its entries with their size, source and
state, removing all or only the stale ones, and pruning the entries a re-pack replaced.

An entry (`<stem>-<key>/`, made by crosskd.data.store) is current while its source file
exists with the content it was packed from (crosskd.data.fingerprint); else it is stale and
will never be read again. Entries packed before their meta.json recorded the content have
no state to check and count as stale too.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from crosskd.data.fingerprint import RECORDS, fingerprint

log = logging.getLogger(__name__)

CURRENT, CHANGED, MISSING, UNKNOWN = "current", "source changed", "source missing", "unknown"


@dataclass(frozen=True)
class CacheEntry:
    """One packed file in the cache."""

    path: Path
    source: Path | None
    content: str | None
    size: int
    state: str

    @property
    def stale(self) -> bool:
        """Never read again: its source is gone or changed, or it cannot be checked."""
        return self.state != CURRENT


def _folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _meta(path: Path) -> dict:
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _state(source: Path | None, content: str | None, cache_dir: Path) -> str:
    if source is None or content is None:
        return UNKNOWN
    if not source.is_file():
        return MISSING
    try:
        digest, _ = fingerprint(source, cache_dir)
    except OSError:
        return MISSING
    return CURRENT if digest == content else CHANGED


def _entry_dirs(cache_dir: Path) -> list[Path]:
    """Entry folders; hidden ones (fingerprint records, packs in progress) are not entries."""
    if not cache_dir.is_dir():
        return []
    return sorted(p for p in cache_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_entry(path: Path, cache_dir: Path) -> CacheEntry:
    """An entry with its recorded source and content and their state now."""
    meta = _meta(path)
    source = Path(meta["source"]) if isinstance(meta.get("source"), str) else None
    content = meta.get("content") if isinstance(meta.get("content"), str) else None
    return CacheEntry(path, source, content, _folder_size(path), _state(source, content, cache_dir))


def list_entries(cache_dir: Path) -> list[CacheEntry]:
    """Every entry of the cache folder, by name."""
    return [read_entry(path, cache_dir) for path in _entry_dirs(cache_dir)]


def remove_entry(path: Path) -> None:
    """Move an entry aside (atomically, so no reader sees half of it), then delete it."""
    aside = path.with_name(f".removed-{path.name}-{os.getpid()}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def clean(cache_dir: Path, stale_only: bool) -> list[CacheEntry]:
    """Remove the stale entries (or all, with the fingerprint records); return those removed."""
    removed = [entry for entry in list_entries(cache_dir) if entry.stale or not stale_only]
    for entry in removed:
        remove_entry(entry.path)
    if not stale_only:
        shutil.rmtree(cache_dir / RECORDS, ignore_errors=True)
    return removed


def prune_replaced(cache_dir: Path, source: Path, content: str, keep: Path) -> None:
    """Remove the entries of `source` packed from other content than `content` (the file
    changed), so a cache that follows a changing file does not keep every old copy."""
    resolved = source.resolve()
    for path in _entry_dirs(cache_dir):
        meta = _meta(path)
        if (path != keep and meta.get("source") == str(resolved)
                and meta.get("content") != content):
            log.info("removing %s: packed from an earlier version of %s", path, source)
            remove_entry(path)
