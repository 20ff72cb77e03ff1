"""An index's groups: one per availability pattern, its videos' stored vectors and the
backend searching them (crosskd.search.patterns says why the grouping keeps search exact)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from crosskd.qbnorm import QueryBank
from crosskd.search.backends import Backend, build_backend, load_backend
from crosskd.search.index_files import IndexFolder, Manifest
from crosskd.search.normalisers import Column
from crosskd.search.patterns import ExpertSlices, Pattern, find_patterns
from crosskd.search.storage import StoredVectors


@dataclass
class Group:
    """One pattern: its videos' stored vectors and the backend searching them."""

    pattern: Pattern
    slices: ExpertSlices
    vectors: StoredVectors
    backend: Backend


def build_groups(availability: np.ndarray, dims: tuple[int, ...],
                 embed: Callable[[int, int], np.ndarray], chunk: int, dtype: str, backend: str,
                 querybank: QueryBank | None, backend_options: dict[str, Any]) -> list[Group]:
    """The groups of a collection whose `[stop - start, E, D]` embeddings `embed(start,
    stop)` gives a chunk at a time, stored as `dtype`, searched by `backend` (with each
    pattern's QB-Norm column when there is a `querybank`)."""
    patterns = find_patterns(availability)
    slices = [ExpertSlices.of(p.experts, dims) for p in patterns]
    stores = [StoredVectors.empty(len(p.members), s, dtype) for p, s in zip(patterns, slices)]
    group_of = np.zeros(len(availability), np.int64)
    row_of = np.zeros(len(availability), np.int64)
    for g, pattern in enumerate(patterns):
        group_of[pattern.members] = g
        row_of[pattern.members] = np.arange(len(pattern.members))
    for start in range(0, len(availability), chunk):
        stop = min(start + chunk, len(availability))
        block, present = embed(start, stop), availability[start:stop]
        for g, store in enumerate(stores):
            chosen = group_of[start:stop] == g
            if chosen.any():
                store.write(row_of[start:stop][chosen],
                            slices[g].concat(block[chosen], present[chosen]))
    return [Group(p, s, store, build_backend(backend, store, column=_column(querybank, p.members),
                                             **backend_options))
            for p, s, store in zip(patterns, slices, stores)]


def load_groups(folder: IndexFolder, manifest: Manifest, availability: np.ndarray,
                backend: str, search_options: dict[str, Any], querybank: QueryBank | None
                ) -> list[Group]:
    """The groups the manifest lists, each file checked, searched by `backend` with
    `search_options`; every video in exactly one."""
    groups = []
    for i, (row, count) in enumerate(manifest.patterns):
        stem = f"groups/g{i}"
        members = folder.array(f"{stem}.members.npy", "int64", (count,))
        folder.positions(f"{stem}.members.npy", members, len(manifest.video_ids))
        if not (availability[members] == np.asarray(row, np.float32)).all():
            raise folder.damaged(f"{stem}.members.npy", f"lists videos whose availability "
                                 f"is not pattern {i}'s in the manifest")
        pattern = Pattern(row, members)
        slices = ExpertSlices.of(pattern.experts, manifest.dims)
        vectors = StoredVectors.load(folder, stem, slices, count, manifest.dtype)
        groups.append(Group(pattern, slices, vectors,
                            load_backend(backend, folder, stem, vectors,
                                         _column(querybank, members), **search_options)))
    if (np.bincount(np.concatenate([g.pattern.members for g in groups]),
                    minlength=len(manifest.video_ids)) != 1).any():
        raise folder.damaged("groups", "the patterns' member lists do not hold each video "
                             "exactly once")
    return groups


def _column(querybank: QueryBank | None, members: np.ndarray) -> Column | None:
    """The QB-Norm column of one pattern's members (None without a bank)."""
    return None if querybank is None else Column.of(querybank.log_normaliser[members])
