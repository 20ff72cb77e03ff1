"""`Index`: a collection's video embeddings grouped by availability pattern, searched exactly.

`Index.load(path).search(query, k)` answers with the same top-k and scores as scoring the
whole collection with the model (crosskd.search.patterns says why), and each hit's
per-expert contributions. The files of an index folder are described in docs/SEARCH.md.
"""

from __future__ import annotations

import json
import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from crosskd.errors import UserError
from crosskd.search.backends import (Backend, build_backend, check_backend, faiss_module,
                                     load_backend)
from crosskd.search.captions import CaptionStore
from crosskd.search.index_files import (FORMAT, MANIFEST, VERSION, IndexFolder, Manifest,
                                        read_manifest)
from crosskd.search.media import attach_media
from crosskd.search.patterns import ExpertSlices, Pattern, find_patterns
from crosskd.search.query import Hit, Query
from crosskd.search.storage import StoredVectors, check_dtype
from crosskd.search.text_side import SETTINGS, WEIGHTS, TextSide

log = logging.getLogger(__name__)


@dataclass
class Group:
    """One pattern: its videos' stored vectors and the backend searching them."""

    pattern: Pattern
    slices: ExpertSlices
    vectors: StoredVectors
    backend: Backend


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
    backend: str = "exact"
    captions: CaptionStore = field(default_factory=CaptionStore.empty)
    text_side: TextSide | None = None
    info: dict[str, Any] = field(default_factory=dict)
    root: Path | None = None
    #: files to copy into the folder on `save`: {video_id: {"video": path, "thumbnail": path}}
    media_sources: dict[str, dict[str, Path]] = field(default_factory=dict)

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
                        backend: str = "exact", **backend_options: Any) -> "Index":
        """An index of videos embedded by the model: `embeddings` `[V, E, D]` (the model's
        padded per-expert embeddings), `availability` `[V, E]`."""
        embeddings = np.asarray(torch.as_tensor(embeddings, dtype=torch.float32).cpu())
        return cls.from_chunks(video_ids, modalities, dims, availability,
                               lambda start, stop: embeddings[start:stop], len(video_ids),
                               dtype, backend, **backend_options)

    @classmethod
    def from_chunks(cls, video_ids: Sequence[str], modalities: Sequence[str],
                    dims: Sequence[int], availability: np.ndarray | torch.Tensor,
                    embed: Callable[[int, int], np.ndarray], chunk: int = 16384,
                    dtype: str = "float32", backend: str = "exact", **backend_options: Any
                    ) -> "Index":
        """The same, for collections larger than memory as float32: `embed(start, stop)`
        gives the `[stop - start, E, D]` embeddings of those videos, one chunk at a time."""
        check_dtype(dtype)
        check_backend(backend)
        availability = np.asarray(torch.as_tensor(availability, dtype=torch.float32).cpu())
        if len(set(video_ids)) != len(video_ids):
            raise UserError("an index needs distinct video ids")
        empty = np.flatnonzero(~(availability != 0).any(axis=1))
        if len(empty):
            raise UserError(f"video {video_ids[empty[0]]!r} has no available expert, so the "
                            "model gives it no score; leave it out of the collection")
        dims = tuple(int(d) for d in dims)
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
        groups = [Group(p, s, store, build_backend(backend, store, **backend_options))
                  for p, s, store in zip(patterns, slices, stores)]
        return cls(list(video_ids), tuple(modalities), dims, availability, groups, dtype, backend)

    def describe_patterns(self) -> list[str]:
        """One line per pattern: how many videos, which experts they lack."""
        lines = []
        for group in self.groups:
            missing = [m for m, a in zip(self.modalities, group.pattern.availability) if a == 0]
            lines.append(f"{len(group.pattern.members)} videos "
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
            raise UnknownVideo(f"no video {video_id!r} in this index")
        return self.positions[video_id]

    def search(self, query: str | np.ndarray | torch.Tensor | Query, k: int = 10) -> list[Hit]:
        """The `k` best videos for a query, best first, with scores and contributions."""
        return self.search_many([self.query(query)], k)[0]

    def search_many(self, queries: Sequence[Query], k: int = 10) -> list[list[Hit]]:
        """`search` for several embedded queries at once (one scan of each pattern)."""
        k = check_k(k, len(self))
        texts = np.stack([q.embeddings for q in queries])
        weights = np.stack([q.weights for q in queries])
        found_scores, found_positions = [], []
        for group in self.groups:
            numerators, rows = group.backend.search(group.slices.concat(texts, weights), k)
            found_scores.append(numerators / group.pattern.denominators(weights)[:, None])
            found_positions.append(group.pattern.members[rows])
        scores = np.concatenate(found_scores, axis=1)
        positions = np.concatenate(found_positions, axis=1)
        answers = []
        for query, row_scores, row_positions in zip(queries, scores, positions):
            order = np.lexsort((row_positions, -row_scores))[:k]
            answers.append([self._hit(query, int(row_positions[i]), float(row_scores[i]))
                            for i in order])
        return answers

    def _hit(self, query: Query, position: int, score: float) -> Hit:
        contributions = self.contributions(query, position)
        video_id = self.video_ids[position]
        return Hit(video_id, score, contributions, tuple(self.captions.texts.get(video_id, ())))

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

    def search_captions(self, video_id: str, k: int = 10) -> list[Hit]:
        """Video -> text: the `k` stored captions the model ranks highest for a video."""
        position = self._position(video_id)
        group, vector = self._stored(position)
        if not len(self.captions):
            raise UserError("this index holds no captions to rank for a video")
        embedded = np.zeros((1, len(self.modalities), max(self.dims)), np.float32)
        for e, block in zip(group.slices.experts, group.slices.split(vector)):
            embedded[0, e, :block.shape[1]] = block[0]
        return self.captions.rank_for_video(embedded, self.availability[position],
                                            check_k(k, len(self.captions)), self.video_ids)

    # --- files ---------------------------------------------------------------------------
    def save(self, root: Path) -> None:
        """Write the index folder (`root` must not exist yet; written next to it, then moved)."""
        root = Path(root)
        if root.exists():
            raise UserError(f"{root} exists; choose a new --out folder or remove it")
        partial = root.with_name(root.name + ".partial")
        if partial.exists():
            raise UserError(f"{partial} exists (an interrupted build); remove it")
        (partial / "groups").mkdir(parents=True)
        np.save(partial / "availability.npy", self.availability)
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
        manifest = {"format": FORMAT, "version": VERSION, "modalities": list(self.modalities),
                    "dims": list(self.dims), "dtype": self.dtype, "backend": self.backend,
                    "video_ids": self.video_ids,
                    "patterns": [{"availability": list(g.pattern.availability),
                                  "videos": len(g.pattern.members)} for g in self.groups],
                    "info": self.info}
        (partial / MANIFEST).write_text(json.dumps(manifest) + "\n", encoding="utf-8")
        partial.rename(root)
        self.root = root

    @classmethod
    def load(cls, root: str | Path, exact: bool = False, candidates: int = 200) -> "Index":
        """Open an index folder; `exact` searches every pattern exactly whatever it was built
        with. The vectors are memory-mapped: only the rows a search reads are paged in. Every
        file is checked against the manifest first (crosskd.search.index_files): a damaged
        folder is a UserError naming the file."""
        folder = IndexFolder(Path(root))
        manifest = read_manifest(folder)
        backend = _usable_backend("exact" if exact else manifest.backend)
        availability = _availability(folder, manifest)
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
                                load_backend(backend, folder, stem, vectors, candidates)))
        if (np.bincount(np.concatenate([g.pattern.members for g in groups]),
                        minlength=len(manifest.video_ids)) != 1).any():
            raise folder.damaged("groups", "the patterns' member lists do not hold each video "
                                 "exactly once")
        shape = (len(manifest.modalities), max(manifest.dims))
        captions = CaptionStore.load(folder, manifest.video_ids, *shape)
        return cls(manifest.video_ids, manifest.modalities, manifest.dims, availability,
                   groups, manifest.dtype, backend, captions, _text_side(folder, shape),
                   manifest.info, folder.root)


def _usable_backend(kind: str) -> str:
    """`kind`, or exact (the same answers, slower) when it needs faiss and faiss is absent."""
    if kind != "exact" and faiss_module() is None:
        log.warning("the index was built with the %s backend, which needs faiss (pip install "
                    "'crosskd[search]'); searching exactly instead", kind)
        return "exact"
    return kind


def _availability(folder: IndexFolder, manifest: Manifest) -> np.ndarray:
    """availability.npy `[V, E]`, its values in [0, 1]."""
    availability = folder.array("availability.npy", "float32",
                                (len(manifest.video_ids), len(manifest.modalities)))
    return folder.finite("availability.npy", availability, 0, 1)


def _text_side(folder: IndexFolder, shape: tuple[int, int]) -> TextSide | None:
    """The stored text model (None when the index holds none), or a UserError naming its
    files: they are read by torch's weights-only loader and built into the model, which must
    embed a caption as `shape` `[experts, width]` as the index's videos are."""
    if folder.file(WEIGHTS, required=False) is None:
        return None
    settings = folder.json(SETTINGS)
    if not isinstance(settings, dict) or not isinstance(settings.get("config"), dict):
        raise folder.damaged(SETTINGS, "must be an object whose 'config' is the model's config")
    try:
        text_side = TextSide.load(folder.root)
        probe = text_side.embed_features(np.zeros((1, text_side.text_dim), np.float32))
    except UserError as err:
        raise folder.damaged(SETTINGS, f"describes no usable text model ({err})") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError, EOFError,
            pickle.UnpicklingError) as err:
        raise folder.damaged(WEIGHTS, f"cannot be read with {SETTINGS} as the index's text "
                             f"model ({type(err).__name__}: {err})") from None
    if probe.embeddings.shape != shape or probe.weights.shape != shape[:1]:
        raise folder.damaged(SETTINGS, f"describes a text model embedding captions as "
                             f"{list(probe.embeddings.shape)}, not the index's {list(shape)}")
    return text_side


class UnknownVideo(UserError):
    """A video id the index does not hold."""


def check_k(k: int, available: int) -> int:
    """`k` when it is a positive count, capped at what there is to return."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise UserError(f"k must be a positive whole number, not {k!r}")
    return int(min(k, available))
