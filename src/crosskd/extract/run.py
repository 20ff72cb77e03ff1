"""Extracting every expert of a collection's videos (or of their segments) into the result
cache.

Decoding runs in worker threads a few videos ahead of the models, which run in the calling
thread (`crosskd.extract.ahead`: memory stays bounded). A segmented video is planned in its
thread (its segments: windows, or shots detected there), then its segments are decoded in
one streamed pass and handed over one by one; the segments a previous run stored are not
decoded again. A video that cannot be decoded, or an expert that fails on one, is recorded
with the reason and marked missing; the run goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from tqdm import tqdm

from crosskd.errors import UserError
from crosskd.extract.ahead import Producer, ahead
from crosskd.extract.cache import (ResultCache, VideoResult, same_version, segment_result,
                                   source_signature)
from crosskd.extract.decode import (AUDIO_RATE, Decoded, DecodeError, DecodeSpec, Span,
                                    VideoFile, decode)
from crosskd.extract.expert import FRAMES, Expert
from crosskd.extract.keyframes import save_keyframe
from crosskd.extract.segmentation import Segment, Segmentation

log = logging.getLogger(__name__)


def decode_spec(experts: list[Expert], max_frames: int = 64) -> DecodeSpec:
    """One decoding pass that serves every expert: their rates, the largest frame size (an
    expert with `own_pixel_dim` gets its own size at its rate, the larger one when it shares
    that rate with others)."""
    visual = [e for e in experts if e.input_kind in ("frames", "clips")]
    shared = [e for e in visual if not e.own_pixel_dim]
    rates = tuple(sorted({float(e.rate) for e in visual})) or (1.0,)
    pixel_dim = max((e.pixel_dim for e in shared), default=128)
    shared_rates = {float(e.rate) for e in shared}
    sizes: dict[float, int] = {}
    for expert in visual:
        if expert.own_pixel_dim:
            rate = float(expert.rate)
            floor = pixel_dim if rate in shared_rates else 0
            sizes[rate] = max(sizes.get(rate, 0), expert.pixel_dim, floor)
    hears = any(e.input_kind in ("audio", "speech") for e in experts)
    return DecodeSpec(rates=rates, pixel_dim=pixel_dim, max_frames=max_frames,
                      audio_rate=AUDIO_RATE if hears else None, sizes=tuple(sorted(sizes.items())))


def shard_of(video_ids: list[str], shard: tuple[int, int]) -> list[str]:
    """Every N-th video of the sorted ids, starting at I (shards never overlap)."""
    index, count = shard
    if not 0 <= index < count:
        raise UserError(f"--shard {index}/{count}: I must be in 0..N-1")
    return sorted(video_ids)[index::count]


def _in_video_time(records: list[dict[str, Any]], start: float) -> list[dict[str, Any]]:
    """Timed text of a segment (times from the segment's start) in the video's time."""
    if not start:
        return records
    return [{**record, **{key: round(record[key] + start, 3) for key in ("start", "end")
                          if isinstance(record.get(key), (int, float))}}
            for record in records]


def _run_experts(experts: list[Expert], video: Decoded) -> VideoResult:
    result = VideoResult(duration=video.duration)
    for expert in experts:
        try:
            output = expert.compute(video)
        except (RuntimeError, ValueError, IndexError) as err:
            log.warning("expert %s failed (%s: %s)", expert.name, type(err).__name__, err)
            output = None
        if output is None or output.value is None:
            result.missing.append(expert.modality)
            continue
        result.features[expert.modality] = output.value
        if output.frames is not None:
            result.features[expert.modality + FRAMES] = output.frames.astype(np.float32)
        if output.text is not None:
            result.texts[expert.modality] = output.text
        if output.timed_text is not None:
            result.timed_text[expert.modality] = _in_video_time(output.timed_text, video.start)
    return result


@dataclass(frozen=True)
class Plan:
    """A segmented video's segments, those not stored yet, and its duration."""

    segments: list[Segment]
    todo: list[Segment]
    duration: float

    def spans(self) -> list[Span]:
        """What to decode: the segments not stored yet (the video's last reads its sound to
        the end of the track, as a whole video does)."""
        last = self.segments[-1]
        return [Span(s.start, s.end, last=s is last) for s in self.todo]


@dataclass
class Extraction:
    """A shard's work: the videos, the experts, where results and keyframes go, and the
    segmentation (None: whole videos)."""

    videos: dict[str, Path]
    experts: list[Expert]
    cache: ResultCache
    out: Path
    spec: DecodeSpec
    workers: int = 2
    segmentation: Segmentation | None = None

    def _source(self, video_id: str) -> dict[str, Any]:
        try:
            return source_signature(self.videos[video_id])
        except OSError as err:
            return {"path": str(self.videos[video_id]), "error": err.strerror}

    def _whole(self, video_id: str) -> Producer:
        """A whole video's one item: its samples, or the DecodeError."""
        def produce(put: Callable[[Any], None]) -> None:
            try:
                put(decode(self.videos[video_id], self.spec))
            except DecodeError as err:
                put(err)
        return produce

    def _segmented(self, video_id: str, source: dict[str, Any]) -> Producer:
        """A segmented video's items: its Plan, then each segment not stored yet decoded (a
        DecodeError instead, where the video cannot be read)."""
        def produce(put: Callable[[Any], None]) -> None:
            try:
                with VideoFile(self.videos[video_id], self.spec) as video:
                    plan = self._plan(video_id, source, video)
                    put(plan)
                    for decoded in video.spans(plan.spans()) if plan.todo else ():
                        put(decoded)
            except DecodeError as err:
                put(err)
        return produce

    def _plan(self, video_id: str, source: dict[str, Any], video: VideoFile) -> Plan:
        if video.duration <= 0:
            raise DecodeError("the video's duration is unknown, so it cannot be cut into "
                              "segments")
        segments = self.segmentation.segments(video_id, self.videos[video_id], video.duration)
        todo = [s for s in segments if not self._stored(video_id, s, source)]
        return Plan(segments, todo, video.duration)

    def _stored(self, video_id: str, segment: Segment, source: dict[str, Any]) -> bool:
        meta = self.cache.meta(segment_result(video_id, segment.id))
        return (meta is not None and same_version(meta.get("source"), source)
                and meta.get("window") == [segment.start, segment.end])

    def _failed(self, video_id: str, source: dict[str, Any], err: DecodeError) -> None:
        log.warning("video %s cannot be decoded: %s", video_id, err)
        self.cache.store(video_id, VideoResult(missing=[e.modality for e in self.experts],
                                               error=str(err), source=source))

    def process(self, video_id: str, source: dict[str, Any],
                decoded: Decoded | DecodeError) -> None:
        """Run the experts on one decoded video and store the result (a failure included)."""
        if isinstance(decoded, DecodeError):
            self._failed(video_id, source, decoded)
            return
        result = _run_experts(self.experts, decoded)
        result.keyframe = save_keyframe(decoded, video_id, self.out)
        result.source = source
        self.cache.store(video_id, result)

    def process_segments(self, video_id: str, source: dict[str, Any],
                         items: Iterator[Plan | Decoded | DecodeError]) -> None:
        """Run the experts on each decoded segment and store it; then the video's entry."""
        plan = next(items)
        if isinstance(plan, DecodeError):
            self._failed(video_id, source, plan)
            return
        for segment, decoded in zip(plan.todo, items):
            if isinstance(decoded, DecodeError):
                self._failed(video_id, source, decoded)
                return
            result = _run_experts(self.experts, decoded)
            result.keyframe = save_keyframe(decoded, segment.id, self.out)
            result.source, result.window = source, [segment.start, segment.end]
            self.cache.store(segment_result(video_id, segment.id), result)
        table = [{"id": s.id, "start": s.start, "end": s.end} for s in plan.segments]
        self.cache.store(video_id, VideoResult(duration=plan.duration, source=source,
                                               segments=table))

    def run(self, video_ids: list[str]) -> int:
        """Extract the videos not cached yet; returns how many were extracted now."""
        sources = [(video_id, self._source(video_id)) for video_id in video_ids]
        todo = [(vid, source) for vid, source in sources if not self.cache.has(vid, source)]
        if len(todo) < len(video_ids):
            log.info("extract: %d of %d videos already done (cache %s)",
                     len(video_ids) - len(todo), len(video_ids), self.cache.folder)
        jobs = [((vid, source), self._segmented(vid, source) if self.segmentation
                 else self._whole(vid)) for vid, source in todo]
        with tqdm(total=len(todo), desc="extract", unit="video", dynamic_ncols=True) as bar:
            for (video_id, source), items in ahead(jobs, self.workers):
                if self.segmentation:
                    self.process_segments(video_id, source, items)
                else:
                    (decoded,) = items
                    self.process(video_id, source, decoded)
                bar.update()
        return len(todo)
