"""`Index`: a collection's video embeddings grouped by availability pattern, searched exactly.

`Index.load(path).search(query, k)` answers with the same top-k and scores as scoring the
whole collection with the model (crosskd.search.patterns says why), and each hit's
per-expert contributions. An index built with a query bank ranks by QB-Norm as evaluation
does (crosskd.search.normalisers says how): a query whose raw best video is active is ranked
by its normalised scores, any other by its raw ones. An index of a segmented dataset holds
each segment's video, start and end (crosskd.search.moments) and can keep each video's best
segment only (`per_video`). The files of an index folder are described in docs/SEARCH.md.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from crosskd.errors import UserError
from crosskd.qbnorm import QueryBank
from crosskd.search.backends import EXACT, check_backend, usable_backend
from crosskd.search.captions import CaptionStore
from crosskd.search.collection import CollectionInfo
from crosskd.search.folder_swap import written_beside
from crosskd.search.index_files import (DIGESTS, FORMAT, MANIFEST, VERSION, IndexFolder,
                                        read_availability, read_digests, read_manifest,
                                        read_text_side)
from crosskd.search.media import attach_media
from crosskd.search.groups import Group, build_groups, load_groups
from crosskd.search.moments import Moments
from crosskd.search.normalisers import load_querybank, log_scores, save_querybank
from crosskd.search.query import Hit, Query, Ranking
from crosskd.search.storage import check_dtype
from crosskd.search.text_side import TextSide

log = logging.getLogger(__name__)


@dataclass
class Index:
    """A searchable collection (see the module docstring); build with `from_embeddings` or
    crosskd.search.build, reopen with `load`."""

    video_ids: list[str]
    modalities: tuple[str, ...]
    dims: tuple[int, ...]
    availability: np.ndarray
    groups: list[Group]
    dtype: str = "float32"
    backend: str = EXACT
    captions: CaptionStore = field(default_factory=CaptionStore.empty)
    text_side: TextSide | None = None
    info: dict[str, Any] = field(default_factory=dict)
    root: Path | None = None
    #: files to copy into the folder on `save`: {video_id: {"video": path, "thumbnail": path}}
    media_sources: dict[str, dict[str, Path]] = field(default_factory=dict)
    #: QB-Norm's per-video normalisers and activation (None: raw scores only)
    querybank: QueryBank | None = None
    #: `[V, 16]` digest of what the model reads of each video (crosskd.search.update), None
    #: for an index that records none
    digests: np.ndarray | None = None
    #: each item's video, start and end (an index of segments), None for whole videos
    moments: Moments | None = None

    def __post_init__(self) -> None:
        self.positions = {vid: i for i, vid in enumerate(self.video_ids)}
        #: each video's group and row in that group's vectors
        self.group_of = np.zeros(len(self.video_ids), np.int64)
        self.row_of = np.zeros(len(self.video_ids), np.int64)
        for g, group in enumerate(self.groups):
            self.group_of[group.pattern.members] = g
            self.row_of[group.pattern.members] = np.arange(len(group.pattern.members))

    def __len__(self) -> int:
        return len(self.video_ids)

    @classmethod
    def from_embeddings(cls, video_ids: Sequence[str], modalities: Sequence[str],
                        dims: Sequence[int], embeddings: np.ndarray | torch.Tensor,
                        availability: np.ndarray | torch.Tensor, dtype: str = "float32",
                        backend: str = EXACT, querybank: QueryBank | None = None,
                        **backend_options: Any) -> "Index":
        """An index of videos embedded by the model: `embeddings` `[V, E, D]` (the model's
        padded per-expert embeddings), `availability` `[V, E]`, QB-Norm's `querybank` over
        these videos when it should rank with it."""
        embeddings = np.asarray(torch.as_tensor(embeddings, dtype=torch.float32).cpu())
        return cls.from_chunks(video_ids, modalities, dims, availability,
                               lambda start, stop: embeddings[start:stop], len(video_ids),
                               dtype, backend, querybank, **backend_options)

    @classmethod
    def from_chunks(cls, video_ids: Sequence[str], modalities: Sequence[str],
                    dims: Sequence[int], availability: np.ndarray | torch.Tensor,
                    embed: Callable[[int, int], np.ndarray], chunk: int = 16384,
                    dtype: str = "float32", backend: str = EXACT,
                    querybank: QueryBank | None = None, **backend_options: Any) -> "Index":
        """The same, for collections larger than memory as float32: `embed(start, stop)`
        gives the `[stop - start, E, D]` embeddings of those videos, one chunk at a time."""
        check_dtype(dtype)
        check_backend(backend)
        availability = np.asarray(torch.as_tensor(availability, dtype=torch.float32).cpu())
        if len(set(video_ids)) != len(video_ids):
            raise UserError("an index needs distinct video ids")
        if querybank is not None and len(querybank.log_normaliser) != len(video_ids):
            raise ValueError("the query bank must hold one normaliser per video")
        empty = np.flatnonzero(~(availability != 0).any(axis=1))
        if len(empty):
            raise UserError(f"video {video_ids[empty[0]]!r} has no available expert, so the "
                            "model gives it no score; leave it out of the collection")
        dims = tuple(int(d) for d in dims)
        groups = build_groups(availability, dims, embed, chunk, dtype, backend, querybank,
                              backend_options)
        return cls(list(video_ids), tuple(modalities), dims, availability, groups, dtype, backend,
                   querybank=querybank)

    def collection(self) -> CollectionInfo:
        """The collection this index holds, named and counted."""
        if self.moments is None:
            return CollectionInfo.of(self.info, len(self), self.captions.owner)
        return CollectionInfo.of(self.info, len(self.moments.videos), self.captions.owner,
                                 segments=len(self))

    def describe_patterns(self) -> list[str]:
        """One line per pattern: how many videos (or segments), which experts they lack."""
        lines, items = [], "videos" if self.moments is None else "segments"
        for group in self.groups:
            missing = [m for m, a in zip(self.modalities, group.pattern.availability) if a == 0]
            lines.append(f"{len(group.pattern.members)} {items} "
                         f"{'missing ' + ', '.join(missing) if missing else 'with every expert'}")
        return lines

    # --- queries -------------------------------------------------------------------------
    def query(self, query: str | np.ndarray | torch.Tensor | Query) -> Query:
        """Turn free text, caption features `[tokens, text_dim]` or a Query into a Query."""
        if isinstance(query, Query):
            return query
        if self.text_side is None:
            raise UserError("this index holds no text model; query with an embedded Query")
        if isinstance(query, str):
            return self.text_side.embed_text(query)
        return self.text_side.embed_features(query)

    def caption(self, video_id: str, slot: int) -> Query:
        """The stored embedding of caption `slot` of `video_id` (as the model embedded it)."""
        return self.captions.query(self._position(video_id), video_id, slot)

    def _position(self, video_id: str) -> int:
        if video_id not in self.positions:
            first = self.moments.first_of(video_id) if self.moments is not None else None
            hint = "" if first is None else \
                f"; it is cut into segments: name one, e.g. {self.video_ids[first]!r}"
            raise UnknownVideo(f"no video {video_id!r} in this index{hint}")
        return self.positions[video_id]

    def search(self, query: str | np.ndarray | torch.Tensor | Query, k: int = 10,
               qbnorm: bool = True, per_video: bool = False) -> list[Hit]:
        """The `k` best items for a query, best first, with scores and contributions (by
        QB-Norm where the index has a bank and `qbnorm` is on; of a segmented index with
        `per_video`, each video's best segment only)."""
        return self.rank([self.query(query)], k, qbnorm, per_video)[0].hits

    def search_many(self, queries: Sequence[Query], k: int = 10, qbnorm: bool = True,
                    per_video: bool = False) -> list[list[Hit]]:
        """`search` for several embedded queries at once (one scan of each pattern)."""
        return [ranking.hits for ranking in self.rank(queries, k, qbnorm, per_video)]

    def rank(self, queries: Sequence[Query], k: int = 10, qbnorm: bool = True,
             per_video: bool = False) -> list[Ranking]:
        """Each query's hits, and whether QB-Norm ranked them: the raw top k, replaced by the
        normalised top k for the queries whose raw best video is active (as evaluation's
        QueryBank.normalise_in_place decides for a row); with `per_video`, of a segmented
        index, the top k videos, each by its best segment."""
        per_video = per_video and self.moments is not None
        k = check_k(k, len(self.moments.videos) if per_video else len(self))
        texts = np.stack([q.embeddings for q in queries])
        weights = np.stack([q.weights for q in queries])
        found = self._ranked(texts, weights, k, False, per_video)
        normalise = np.zeros(len(queries), bool)
        if qbnorm and self.querybank is not None:
            normalise = self.querybank.active[[positions[0] for _, positions in found]]
        if normalise.any():
            for n, chosen in zip(np.flatnonzero(normalise),
                                 self._ranked(texts[normalise], weights[normalise], k, True,
                                              per_video)):
                found[n] = chosen
        return [Ranking([self._hit(query, int(p), float(s)) for s, p in zip(*top)], bool(used))
                for query, top, used in zip(queries, found, normalise)]

    def _ranked(self, texts: np.ndarray, weights: np.ndarray, k: int, normalised: bool,
                per_video: bool) -> list[tuple[np.ndarray, np.ndarray]]:
        """`_top`, or with `per_video` its ranking cut to each video's best item."""
        if not per_video:
            return self._top(texts, weights, k, normalised)
        return self.moments.best_per_video(
            lambda rows, depth: self._top(texts[rows], weights[rows], depth, normalised),
            len(texts), k)

    def _top(self, texts: np.ndarray, weights: np.ndarray, k: int, normalised: bool
             ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query, the raw scores and positions of its k best videos, best first by raw
        or (`normalised`) by normalised score, ties by position."""
        found_scores, found_positions = [], []
        for group in self.groups:
            denominators = group.pattern.denominators(weights)
            column = group.backend.column.query_weights(denominators, self.querybank.beta) \
                if normalised else None
            numerators, rows = group.backend.search(group.slices.concat(texts, weights), k,
                                                    column)
            found_scores.append(numerators / denominators[:, None])
            found_positions.append(group.pattern.members[rows])
        scores = np.concatenate(found_scores, axis=1)
        positions = np.concatenate(found_positions, axis=1)
        keys = log_scores(self.querybank, scores, positions) if normalised else scores
        orders = [np.lexsort((p, -key))[:k] for p, key in zip(positions, keys)]
        return [(s[order], p[order]) for s, p, order in zip(scores, positions, orders)]

    def _hit(self, query: Query, position: int, score: float) -> Hit:
        contributions = self.contributions(query, position)
        video_id = self.video_ids[position]
        normalised = None
        if self.querybank is not None:
            normalised = float(np.exp(log_scores(self.querybank, np.array(score), position)))
        moment = self.moments.moment(position) if self.moments is not None else None
        return Hit(video_id, score, contributions, tuple(self.captions.texts.get(video_id, ())),
                   normalised, self.captions.read.get(video_id), moment)

    def contributions(self, query: Query, position: int) -> dict[str, float]:
        """Each expert's share w_e a_e <t_e, v_e> / sum_f w_f a_f of one video's score."""
        group, vector = self._stored(position)
        blocks = group.slices.split(vector)
        denominator = float(query.weights @ self.availability[position])
        shares = {m: 0.0 for m in self.modalities}
        for e, width, block in zip(group.slices.experts, group.slices.widths, blocks):
            similarity = float(query.embeddings[e, :width] @ block[0])
            shares[self.modalities[e]] = float(query.weights[e]) * similarity / denominator
        return shares

    def _stored(self, position: int) -> tuple[Group, np.ndarray]:
        """A video's group and its stored vector `[1, width]` (decoded)."""
        group = self.groups[self.group_of[position]]
        return group, group.vectors.decode(np.array([self.row_of[position]]))

    def stored_embeddings(self, positions: np.ndarray | None = None) -> np.ndarray:
        """`[n, E, D]` the stored vectors of the videos at `positions` (all by default),
        decoded and padded as the model pads them (already times availability)."""
        positions = np.arange(len(self)) if positions is None else np.asarray(positions)
        found = np.zeros((len(positions), len(self.modalities), max(self.dims)), np.float32)
        for g, group in enumerate(self.groups):
            chosen = np.flatnonzero(self.group_of[positions] == g)
            if len(chosen):
                decoded = group.vectors.decode(self.row_of[positions[chosen]])
                for e, block in zip(group.slices.experts, group.slices.split(decoded)):
                    found[chosen, e, :block.shape[1]] = block
        return found

    def search_captions(self, video_id: str, k: int = 10) -> list[Hit]:
        """Video -> text: the `k` stored captions the model ranks highest for a video."""
        position = self._position(video_id)
        if not len(self.captions):
            raise UserError("this index holds no captions to rank for a video")
        embedded = self.stored_embeddings(np.array([position]))
        return self.captions.rank_for_video(embedded, self.availability[position],
                                            check_k(k, len(self.captions)), self.video_ids)

    # --- files ---------------------------------------------------------------------------
    def save(self, root: Path, replace: bool = False) -> None:
        """Write the index folder: next to `root`, then moved there (crosskd.search.folder_swap),
        so an interruption never leaves half an index; `root` must not exist unless
        `replace` (an update), which swaps the folder there out."""
        root = Path(root)
        with written_beside(root, replace) as partial:
            self._write(partial)
        self.root = root

    def _write(self, partial: Path) -> None:
        """Every file of the index, into the empty folder `partial`."""
        (partial / "groups").mkdir()
        np.save(partial / "availability.npy", self.availability)
        if self.digests is not None:
            np.save(partial / DIGESTS, self.digests)
        for i, group in enumerate(self.groups):
            stem = partial / "groups" / f"g{i}"
            np.save(stem.with_suffix(".members.npy"), group.pattern.members)
            group.vectors.save(stem)
            group.backend.save(stem)
        self.captions.save(partial)
        if self.text_side is not None:
            self.text_side.save(partial)
        if self.media_sources:
            attach_media(partial, self.media_sources)
        if self.querybank is not None:
            save_querybank(partial, self.querybank)
        if self.moments is not None:
            self.moments.save(partial, self.video_ids)
        manifest = {"format": FORMAT, "version": VERSION, "modalities": list(self.modalities),
                    "dims": list(self.dims), "dtype": self.dtype, "backend": self.backend,
                    "video_ids": self.video_ids,
                    "patterns": [{"availability": list(g.pattern.availability),
                                  "videos": len(g.pattern.members)} for g in self.groups],
                    "info": self.info}
        if self.querybank is not None:
            manifest["qbnorm"] = {"beta": self.querybank.beta,
                                  "bank_size": self.querybank.size}
        (partial / MANIFEST).write_text(json.dumps(manifest) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, root: str | Path, exact: bool = False, **search_options: Any) -> "Index":
        """Open an index folder; `exact` searches every pattern exactly whatever it was built
        with, `search_options` set the options of its backend (crosskd.search.backends). The
        vectors are memory-mapped: only the rows a search reads are paged in. Every file is
        checked against the manifest first (crosskd.search.index_files): a damaged folder is
        a UserError naming the file."""
        folder = IndexFolder(Path(root))
        manifest = read_manifest(folder)
        backend = usable_backend(EXACT if exact else manifest.backend)
        availability = read_availability(folder, manifest)
        querybank = load_querybank(folder, manifest.qbnorm, len(manifest.video_ids))
        groups = load_groups(folder, manifest, availability, backend, search_options, querybank)
        shape = (len(manifest.modalities), max(manifest.dims))
        captions = CaptionStore.load(folder, manifest.video_ids, *shape)
        return cls(manifest.video_ids, manifest.modalities, manifest.dims, availability,
                   groups, manifest.dtype, backend, captions, read_text_side(folder, shape),
                   manifest.info, folder.root, querybank=querybank,
                   digests=read_digests(folder, len(manifest.video_ids)),
                   moments=Moments.load(folder, manifest.video_ids))


class UnknownVideo(UserError):
    """A video id the index does not hold."""


def check_k(k: int, available: int) -> int:
    """`k` when it is a positive count, capped at what there is to return."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise UserError(f"k must be a positive whole number, not {k!r}")
    return int(min(k, available))
