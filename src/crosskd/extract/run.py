"""Extracting every expert of a collection's videos into the result cache.

Decoding runs in worker threads (PyAV releases the GIL while FFmpeg decodes) a few videos
ahead of the models, which run in the calling thread; at most `2 * workers` decoded videos
wait, so memory stays bounded. A video that cannot be decoded, or an expert that fails on
one, is recorded with the reason and marked missing; the run goes on.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from tqdm import tqdm

from crosskd.errors import UserError
from crosskd.extract.cache import ResultCache, VideoResult, source_signature
from crosskd.extract.decode import AUDIO_RATE, Decoded, DecodeError, DecodeSpec, decode
from crosskd.extract.expert import FRAMES, Expert
from crosskd.extract.keyframes import save_keyframe

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
            result.timed_text[expert.modality] = output.timed_text
    return result


@dataclass
class Extraction:
    """A shard's work: the videos, the experts, where results and keyframes go."""

    videos: dict[str, Path]
    experts: list[Expert]
    cache: ResultCache
    out: Path
    spec: DecodeSpec
    workers: int = 2

    def _decode(self, path: Path) -> Decoded | DecodeError:
        try:
            return decode(path, self.spec)
        except DecodeError as err:
            return err

    def _source(self, video_id: str) -> dict[str, Any]:
        try:
            return source_signature(self.videos[video_id])
        except OSError as err:
            return {"path": str(self.videos[video_id]), "error": err.strerror}

    def _decoded(self, todo: list[tuple[str, dict[str, Any]]]) -> Iterator[tuple[str, dict, Any]]:
        """The videos decoded in order, at most 2 * workers decoded ahead."""
        with ThreadPoolExecutor(self.workers, thread_name_prefix="decode") as pool:
            window: list[tuple[str, dict[str, Any], Future]] = []
            for video_id, source in todo:
                window.append((video_id, source, pool.submit(self._decode, self.videos[video_id])))
                if len(window) >= 2 * self.workers:
                    video_id, source, future = window.pop(0)
                    yield video_id, source, future.result()
            for video_id, source, future in window:
                yield video_id, source, future.result()

    def process(self, video_id: str, source: dict[str, Any],
                decoded: Decoded | DecodeError) -> None:
        """Run the experts on one decoded video and store the result (a failure included)."""
        if isinstance(decoded, DecodeError):
            result = VideoResult(missing=[e.modality for e in self.experts], error=str(decoded))
            log.warning("video %s cannot be decoded: %s", video_id, decoded)
        else:
            result = _run_experts(self.experts, decoded)
            result.keyframe = save_keyframe(decoded, video_id, self.out)
        result.source = source
        self.cache.store(video_id, result)

    def run(self, video_ids: list[str]) -> int:
        """Extract the videos not cached yet; returns how many were extracted now."""
        sources = [(video_id, self._source(video_id)) for video_id in video_ids]
        todo = [(vid, source) for vid, source in sources if not self.cache.has(vid, source)]
        if len(todo) < len(video_ids):
            log.info("extract: %d of %d videos already done (cache %s)",
                     len(video_ids) - len(todo), len(video_ids), self.cache.folder)
        with tqdm(total=len(todo), desc="extract", unit="video", dynamic_ncols=True) as bar:
            for video_id, source, decoded in self._decoded(todo):
                self.process(video_id, source, decoded)
                bar.update()
        return len(todo)
