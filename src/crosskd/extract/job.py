"""One `crosskd extract` run: find the videos and captions (joined with the dataset already in
OUT), extract this shard's videos into the cache, and write the dataset when every shard is
done (or on `--merge`)."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from crosskd.diskwrites import reported_write
from crosskd.errors import UserError
from crosskd.extract.cache import ResultCache
from crosskd.extract.captions import read_captions
from crosskd.extract.collection import Collection, gather
from crosskd.extract.items import Items, segments_of, whole_videos
from crosskd.extract.preflight import check_models
from crosskd.extract.run import Extraction, decode_spec, shard_of
from crosskd.extract.segmentation import SHOTS, Segmentation
from crosskd.extract.shots import require_shot_detector
from crosskd.extract.sources import find_videos
from crosskd.extract.splits import assign_splits, item_splits
from crosskd.extract.text_encoders import TEXT_ENCODERS, build_text_encoder, parse_choice
from crosskd.extract.video_experts import build_experts
from crosskd.extract.decode import DecodeSpec
from crosskd.extract.encoder import TextEncoder
from crosskd.extract.expert import Expert
from crosskd.extract.writer import write_dataset
from crosskd.untrusted import ascii_int

log = logging.getLogger(__name__)
CACHE_FOLDER = ".extract-cache"


@dataclass
class ExtractOptions:
    """Everything a run is told (the command line's flags)."""

    videos: Path
    #: None: a collection without captions (indexed with a model trained elsewhere).
    captions: Path | None
    out: Path
    #: the collection's name (default: the dataset's recorded name, else OUT's folder name).
    name: str | None = None
    #: remove the dataset's videos whose file is gone (default: keep them).
    prune: bool = False
    experts: str = "default"
    expert_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    text_encoder: str = "transformers"
    #: where the experts run (under torchrun the command gives each rank its own GPU)
    device: str = "cpu"
    #: (I, N): this run extracts every N-th video from the I-th (--shard, else torchrun's
    #: rank and process count: crosskd.process.ProcessContext.shard)
    shard: tuple[int, int] = (0, 1)
    merge: bool = False
    max_frames: int = 64
    workers: int = 2
    seed: int = 0
    #: how each video is cut into segments (--segment; None: whole videos).
    segmentation: Segmentation | None = None


MAX_SHARDS = 1 << 20


def shard_numbers(text: str) -> tuple[int, int]:
    """`I/N` -> (I, N) in ASCII digits with 0 <= I < N; else a ValueError of one line."""
    index, sep, count = text.partition("/")
    if not sep:
        raise ValueError(f"{text!r} is not I/N; write e.g. 0/4 for the first of four shards")
    total = ascii_int(count, "N (the number of shards)", 1, MAX_SHARDS)
    return ascii_int(index, "I (this shard)", 0, total - 1), total


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` -> (I, N); a mistake is a UserError naming --shard."""
    try:
        return shard_numbers(text)
    except ValueError as err:
        raise UserError(f"--shard {text!r}: {err}") from None


@dataclass(frozen=True)
class Written:
    """A dataset this run wrote: its extraction.json, the collection and what changed."""

    record: Path
    collection: Collection
    items: Items


def collect(options: ExtractOptions) -> Collection:
    """The videos of VIDEOS and of the dataset already in OUT, with their captions."""
    captions = read_captions(options.captions) if options.captions is not None else None
    return gather(find_videos(options.videos), captions, options.out, options.name,
                  options.prune, options.segmentation)


def extract(options: ExtractOptions) -> Written | None:
    """Run the extraction; returns what it wrote when this run wrote the dataset."""
    if options.segmentation is not None and options.segmentation.mode == SHOTS:
        require_shot_detector()
    collection = collect(options)
    check_models(options.experts, options.expert_options, options.text_encoder)
    name, text_options = parse_choice(options.text_encoder)
    if name in TEXT_ENCODERS and "device" in inspect.signature(TEXT_ENCODERS[name]).parameters:
        text_options.setdefault("device", options.device)
    text_encoder = build_text_encoder(name, text_options)
    experts = build_experts(options.experts, options.expert_options, device=options.device,
                            text_encoder=text_encoder)
    spec = decode_spec(experts, options.max_frames)
    with reported_write(options.out, "choose another --out", action="create"):
        options.out.mkdir(parents=True, exist_ok=True)
    cache = ResultCache(options.out / CACHE_FOLDER, _cache_settings(options, spec, experts))
    shard = options.shard
    if options.merge:
        return _write(options, collection, experts, text_encoder, cache, spec)
    mine = shard_of(collection.extractable, shard)
    done = Extraction(collection.sources, experts, cache, options.out, spec,
                      options.workers, options.segmentation).run(mine)
    log.info("extract: shard %d/%d: %d videos extracted, %d were cached", *shard, done,
             len(mine) - done)
    if shard[1] == 1:
        return _write(options, collection, experts, text_encoder, cache, spec)
    digest = collection_digest(collection, options.seed, text_encoder)
    cache.mark_done(shard, digest)
    if not cache.claim_merge(shard[1], digest):
        log.info("extract: shard %d/%d done; the last shard to finish writes the dataset "
                 "(or run the same command with --merge)", *shard)
        return None
    try:
        return _write(options, collection, experts, text_encoder, cache, spec)
    except BaseException:
        cache.release_merge(shard[1], digest)  # a rerun of any shard merges again
        raise


def _cache_settings(options: ExtractOptions, spec: DecodeSpec,
                    experts: list[Expert]) -> dict[str, Any]:
    """What the cache key hashes: decoding, experts, and the segmentation when there is one
    (a whole-video key stays what it was before segments)."""
    settings = {"decode": spec.record(), "experts": [e.provenance() for e in experts]}
    if options.segmentation is not None:
        settings["segmentation"] = options.segmentation.record()
    return settings


def _write(options: ExtractOptions, collection: Collection, experts: list[Expert],
           text_encoder: TextEncoder, cache: ResultCache, spec: DecodeSpec) -> Written:
    usable, items = _usable(collection, cache, [e.modality for e in experts], options.seed)
    return Written(write_dataset(options.out, usable, items, experts, text_encoder, cache,
                                 spec), usable, items)


def collection_digest(collection: Collection, seed: int, text_encoder: TextEncoder) -> str:
    """What the dataset is written from, hashed: the videos (id, size, time; not the path,
    which differs between machines sharing OUT), captions, known splits, seed, name and text
    encoder. Shards mark themselves done for this digest, so a changed collection merges
    again."""
    files = {}
    for video_id in collection.video_ids:
        try:
            stat = collection.sources[video_id].stat()
            files[video_id] = [stat.st_size, stat.st_mtime_ns]
        except OSError:
            files[video_id] = None
    state = {"videos": files, "captions": collection.captions, "splits": collection.given,
             "seed": seed, "name": collection.name, "text_encoder": text_encoder.record()}
    if collection.segmentation is not None:
        state.update(timed=collection.timed, segmentation=collection.segmentation.record())
    text = json.dumps(state, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _usable(collection: Collection, cache: ResultCache, modalities: list[str],
            seed: int) -> tuple[Collection, Items]:
    """The collection without videos no expert could read (they stay in the report), its
    captioned videos split, and its items (videos, or their segments)."""
    metas = {vid: cache.meta(vid) for vid in collection.video_ids}
    _refuse_absent([vid for vid, meta in metas.items() if meta is None], collection)
    collection.failed = {vid: meta.get("error") or "no expert could read it"
                         for vid, meta in metas.items()
                         if meta.get("error") or set(modalities) <= set(meta.get("missing", ()))}
    collection.video_ids = [vid for vid in collection.video_ids if vid not in collection.failed]
    if not collection.video_ids:
        vid, reason = next(iter(collection.failed.items()))
        raise UserError(f"no video could be read (e.g. {vid!r}: {reason})")
    if collection.segmentation is None:
        captioned = [vid for vid in collection.video_ids if vid in collection.captions]
        collection.splits = assign_splits(captioned, collection.given, seed) if captioned else {}
        return collection, whole_videos(collection)
    items = segments_of(collection, {vid: metas[vid]["segments"] for vid in collection.video_ids})
    captioned = [vid for vid in collection.video_ids
                 if any(item in items.captions for item in items.by_video[vid])]
    collection.splits = assign_splits(captioned, collection.given, seed) if captioned else {}
    return collection, replace(items, splits=item_splits(collection.splits, items.by_video,
                                                         items.captions))


def _refuse_absent(absent: list[str], collection: Collection) -> None:
    """Videos without a result: not extracted yet (a shard has not run), or gone from disk
    and not in the cache (extracted with other experts or settings)."""
    gone = sorted(set(absent) & set(collection.gone))
    if gone:
        raise UserError(f"{len(gone)} video(s) of the dataset have no file any more and no "
                        f"result for these experts and settings in the cache (e.g. "
                        f"{gone[0]!r}); put their files back, or run with --prune to remove "
                        "them from the dataset")
    if absent:
        raise UserError(f"--merge: {len(absent)} video(s) are not extracted yet (e.g. "
                        f"{absent[0]!r}); run every shard first (--shard I/N for I in 0..N-1)")
