"""Updating an index: `crosskd index` onto an index it built before embeds only the videos that
are new or whose features changed, keeps the stored embeddings and captions of the others and
drops the videos the collection no longer holds; the result is the index a fresh build gives
(the same videos in the same order, the same vectors and captions).

Besides the model, a video's embeddings depend only on what the model reads of it: its expert
inputs (values and availability, truncated and padded as a batch holds them) and its caption
tokens. An index keeps a digest of those per video (`digests.npy`), and the settings it was
built with (the model's digest, storage, backend and its options, QB-Norm); an update under
other settings is refused, since every vector would change (that is --rebuild).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch

from crosskd.data.batch import Batch
from crosskd.data.batches import EvalSplit
from crosskd.errors import UserError
from crosskd.extract.collection import listed
from crosskd.inference import DEFAULT_CAPTION_CHUNK
from crosskd.inference.embedding import video_chunks, videos_per_chunk
from crosskd.models.embeddings import VideoEmbedding
from crosskd.search.bank import BankChoice
from crosskd.search.captions import CaptionStore
from crosskd.search.index import Index
from crosskd.search.index_files import DIGEST_BYTES
from crosskd.untrusted import terminal_safe


def model_digest(model: torch.nn.Module, raw: Mapping[str, Any]) -> str:
    """The model's weights and the config parts that build it (`arch`, `experts`), as hex."""
    digest = hashlib.blake2b(digest_size=DIGEST_BYTES)
    digest.update(json.dumps([raw.get("arch"), raw.get("experts")], sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def index_settings(model: str, dtype: str, backend: str, backend_options: Mapping[str, Any],
                   qbnorm: BankChoice | None) -> dict[str, Any]:
    """What an index was built with, as its manifest records it: what an update must share."""
    bank = None
    if qbnorm is not None:
        source = str(qbnorm.captions.resolve()) if qbnorm.captions else "training captions"
        bank = {"beta": qbnorm.beta, "bank": source}
    return {"model": model, "dtype": dtype, "backend": backend,
            "backend_options": dict(sorted(backend_options.items())), "qbnorm": bank}


def require_same_settings(previous: Index, settings: Mapping[str, Any]) -> None:
    """Refuse in one line to update an index built with other settings."""
    before = previous.info.get("settings")
    where = previous.root
    if not isinstance(before, dict):
        raise UserError(f"{where} was built by an earlier crosskd index that records no build "
                        "settings, so it cannot be updated; give --rebuild to build it afresh")
    differ = [key for key in settings if before.get(key) != settings[key]]
    if differ:
        built = ", ".join(_setting(key, before.get(key)) for key in differ)
        asked = ", ".join(_setting(key, settings[key]) for key in differ if key != "model")
        raise UserError(terminal_safe(
            f"{where} was built with {built}{f', not {asked}' if asked else ''}: updating it "
            "would change every video; give the same settings, --rebuild to build it afresh, "
            "or another --out"))


def require_same_collection(previous: Index, dataset: str, split: str | None) -> None:
    """Refuse in one line to update an index of another dataset or split into this one."""
    if (previous.info.get("dataset"), previous.info.get("split")) != (dataset, split):
        raise UserError(terminal_safe(
            f"{previous.root} holds {previous.collection().title()}, another collection than "
            f"{dataset}{f' {split}' if split else ''}; give --rebuild to replace it, or "
            "another --out"))


def _setting(key: str, value: Any) -> str:
    """One setting as the refusal names it (`value` may come from a hand-edited manifest)."""
    if key == "model":
        return "another model"
    if key == "qbnorm":
        return "no QB-Norm" if value is None else f"QB-Norm {json.dumps(value)}"
    if key == "backend_options":
        return f"backend options {json.dumps(value)}"
    return f"--{key} {value}"


def video_digests(split: EvalSplit) -> np.ndarray:
    """`[V, DIGEST_BYTES]` uint8: each video's digest of what the model reads of it."""
    digests = np.zeros((split.num_videos, DIGEST_BYTES), np.uint8)
    chunk = videos_per_chunk(split, DEFAULT_CAPTION_CHUNK)
    for start, batch in video_chunks(split, chunk, "digests"):
        for row in range(len(batch.video_ids)):
            digest = hashlib.blake2b(digest_size=DIGEST_BYTES)
            for name in split.modalities:
                digest.update(batch.ind[name][row].numpy())
                digest.update(batch.experts[name][row].numpy())
            for slot in np.flatnonzero(batch.query_masks[row].numpy() > 0):
                tokens = int(batch.text_token_mask[row, slot])  # the rest is zero padding
                digest.update(np.array([slot, tokens], np.int64))
                digest.update(batch.text[row, slot, :tokens].numpy())
            digests[start + row] = np.frombuffer(digest.digest(), np.uint8)
    return digests


@dataclass(frozen=True)
class Plan:
    """Which videos of the collection (positions) are embedded now and which keep their
    stored embeddings (`reused`, from positions `reused_from` of the previous index)."""

    video_ids: list[str]
    embedded: np.ndarray
    reused: np.ndarray
    reused_from: np.ndarray
    added: list[str]
    changed: list[str]
    removed: list[str]

    def lines(self, unit: str = "video") -> list[str]:
        """What the update did: one line each for added, changed, kept and removed items
        (`unit`s: videos, or a segmented index's segments)."""
        kept = [self.video_ids[p] for p in self.reused]
        changed = listed(self.changed, unit) + (": embedded again" if self.changed else "")
        return [f"added:   {listed(self.added, unit)}", f"changed: {changed}",
                f"kept:    {listed(kept, unit)}", f"removed: {listed(self.removed, unit)}"]


def plan_update(video_ids: Sequence[str], digests: np.ndarray, previous: Index | None) -> Plan:
    """Embed the videos `previous` lacks or holds with another digest (every video without
    a previous index, or when it records no digests); reuse the others."""
    video_ids = list(video_ids)
    if previous is None:
        return Plan(video_ids, np.arange(len(video_ids)), *_no_positions(2), [], [], [])
    old = np.array([previous.positions.get(vid, -1) for vid in video_ids], np.int64)
    held = old >= 0
    same = held.copy()
    if previous.digests is None:
        same[:] = False
    else:
        same[held] = (previous.digests[old[held]] == digests[held]).all(axis=1)
    current = set(video_ids)
    return Plan(video_ids, np.flatnonzero(~same), np.flatnonzero(same), old[same],
                [vid for vid, h in zip(video_ids, held) if not h],
                [vid for vid, h, s in zip(video_ids, held, same) if h and not s],
                [vid for vid in previous.video_ids if vid not in current])


def assembled_embeddings(plan: Plan, fresh: VideoEmbedding | None, previous: Index | None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """`[V, E, D]` embeddings and `[V, E]` availability of the collection's videos: those
    embedded now (`fresh`, in `plan.embedded` order), the stored ones of reused videos."""
    if fresh is not None:
        _, experts, width = fresh.embeddings.shape
    else:
        experts, width = len(previous.modalities), max(previous.dims)
    embeddings = np.zeros((len(plan.video_ids), experts, width), np.float32)
    availability = np.zeros((len(plan.video_ids), experts), np.float32)
    if fresh is not None:
        embeddings[plan.embedded] = fresh.embeddings.numpy()
        availability[plan.embedded] = fresh.availability.numpy()
    if len(plan.reused):
        embeddings[plan.reused] = previous.stored_embeddings(plan.reused_from)
        availability[plan.reused] = previous.availability[plan.reused_from]
    return embeddings, availability


def merged_captions(plan: Plan, fresh: CaptionStore | None, previous: Index | None,
                    shape: tuple[int, int]) -> CaptionStore:
    """Every caption of the collection in a fresh build's order (video by video, slot by
    slot): those embedded now (`fresh`, owners among `plan.embedded`) and the stored ones of
    the reused videos; `shape` is a caption embedding's `[E, D]`."""
    parts = [] if fresh is None else [(fresh.embeddings, fresh.weights,
                                       plan.embedded[fresh.owner], fresh.slot)]
    if previous is not None and len(plan.reused) and len(previous.captions):
        stored = previous.captions
        moved = np.full(len(previous), -1, np.int64)
        moved[plan.reused_from] = plan.reused
        kept = np.flatnonzero(moved[stored.owner] >= 0)
        parts.append((stored.embeddings[kept], stored.weights[kept], moved[stored.owner[kept]],
                      stored.slot[kept]))
    if not parts:
        return CaptionStore(np.zeros((0, *shape), np.float32), np.zeros((0, shape[0]), np.float32),
                            *_no_positions(2))
    embeddings, weights, owner, slot = (np.concatenate(part) for part in zip(*parts))
    order = np.lexsort((slot, owner))
    return CaptionStore(embeddings[order], weights[order], owner[order], slot[order])


def _no_positions(count: int) -> list[np.ndarray]:
    return [np.zeros(0, np.int64) for _ in range(count)]


class Chosen:
    """Some videos of an evaluation split (at `positions`), seen as a split of their own
    (crosskd.data.sampling.EvalBatches): the videos an update embeds."""

    def __init__(self, split: EvalSplit, positions: np.ndarray) -> None:
        self.split = split
        self.positions = np.asarray(positions, np.int64)
        self.slots = split.slots
        self.query_masks = split.query_masks[self.positions]
        self.protocol = split.protocol

    @property
    def num_videos(self) -> int:
        return len(self.positions)

    @property
    def video_ids(self) -> list[str]:
        return [self.split.video_ids[p] for p in self.positions]

    def batches(self, batch_size: int, videos: range | None = None) -> Iterator[Batch]:
        """The chosen videos (or those of `videos`, positions among them) in order."""
        videos = videos if videos is not None else range(self.num_videos)
        for begin in range(videos.start, videos.stop, batch_size):
            yield self.split.batch(self.positions[begin:min(begin + batch_size, videos.stop)])
