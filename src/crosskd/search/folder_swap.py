"""Writing an index folder so that an interruption never costs a good index: the new folder is
written beside its place (`NAME.partial`) and moved in only when complete; an update moves
the old folder aside (`NAME.previous`) first and removes it last.

A run stopped between those two moves leaves no folder at NAME but both complete folders
beside it; the next run says so and writes nothing until one is moved back.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Iterator

from crosskd.errors import UserError


def _beside(root: Path, suffix: str) -> Path:
    return root.with_name(root.name + suffix)


@contextlib.contextmanager
def written_beside(root: Path, replace: bool = False) -> Iterator[Path]:
    """The empty folder to write `root`'s files into; moved to `root` when the block ends
    (replacing the folder there when `replace`, refused when there is one otherwise), and
    removed when the block raises."""
    partial, previous = _beside(root, ".partial"), _beside(root, ".previous")
    if previous.exists():
        raise UserError(_interrupted(root, partial, previous))
    if root.exists() and not replace:
        raise UserError(f"{root} exists; choose a new --out folder or remove it")
    if partial.exists():
        raise UserError(f"{partial} exists (an interrupted build); remove it")
    partial.mkdir(parents=True)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if root.exists():
        root.rename(previous)
        partial.rename(root)
        shutil.rmtree(previous)
    else:
        partial.rename(root)


def _interrupted(root: Path, partial: Path, previous: Path) -> str:
    """What an update stopped between its moves left, and what to do."""
    if root.exists():
        return f"{previous} is left from an update of {root}, which is complete; remove it"
    replaced = f"{previous} holds the index an interrupted update of {root} was replacing"
    if partial.exists():
        return (f"{replaced}, and {partial} the complete update; move one of them to {root} "
                "and remove the other")
    return f"{replaced}; move it back to {root}"
