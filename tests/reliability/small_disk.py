"""Real small filesystems to fill: a tmpfs of a few hundred KiB mounted under a test folder."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest


def _mount(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=False)


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Callable[..., Path]]:
    """`small_disk(kib, read_only=False)` mounts a fresh tmpfs of that size and returns it;
    skipped, with the reason, where mounting is not allowed (not root, no CAP_SYS_ADMIN)."""
    mounted: list[Path] = []

    def mount(kib: int, read_only: bool = False, name: str = "disk") -> Path:
        if shutil.which("mount") is None:
            pytest.skip("no mount command: cannot make a real small filesystem to fill")
        path = tmp_path / name
        path.mkdir()
        result = _mount(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(path)])
        if result.returncode != 0:
            pytest.skip(f"cannot mount a {kib} KiB tmpfs to fill ({result.stderr.strip()}); "
                        "these tests need root (CI runs them as root)")
        mounted.append(path)
        if read_only:
            assert _mount(["mount", "-o", "remount,ro", str(path)]).returncode == 0
        return path

    yield mount
    for path in reversed(mounted):
        _mount(["umount", "-l", str(path)])


def leftovers(folder: Path) -> list[Path]:
    """Temporary or partial files under `folder` (what a failed write must not leave)."""
    return [p for p in folder.rglob("*") if p.name.startswith(".") and p.name != ".fingerprints"
            and not p.parent.name == ".fingerprints"]
