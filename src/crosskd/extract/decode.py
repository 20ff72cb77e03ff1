"""Video decoding with PyAV: frames sampled by timestamp at fixed rates, the soundtrack
resampled to mono (frames in one pass over the file, the soundtrack in a second).

A sampler holds the latest decoded frame and emits it at each target time, so a variable
frame rate, dropped frames or a late first frame all give frames on the same fixed grid.
Frames are converted to RGB (rotated upright, short side scaled to `pixel_dim`) only when a
sampler keeps them; at most `max_frames` per rate are kept (the grid thins out evenly for
longer videos), so memory is bounded however long the video is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

#: the sample rate of the soundtrack every audio expert reads.
AUDIO_RATE = 16000


class DecodeError(Exception):
    """A video that cannot be decoded; the message is the reason kept in the report."""


@dataclass(frozen=True)
class DecodeSpec:
    """What to take from each video."""

    #: frame rates wanted (frames for image experts, clips for video experts).
    rates: tuple[float, ...] = (2.0,)
    pixel_dim: int = 224
    max_frames: int = 64
    audio_rate: int | None = AUDIO_RATE
    max_audio_seconds: float = 600.0
    #: (rate, short side) of rates decoded at their own size instead of pixel_dim: OCR reads
    #: text at more pixels than the image models need, and they need not pay for it.
    sizes: tuple[tuple[float, int], ...] = ()

    def pixels(self, rate: float) -> int:
        """The short side of the frames kept at `rate`."""
        return dict(self.sizes).get(rate, self.pixel_dim)

    def record(self) -> dict:
        """The settings as JSON-able values; `sizes` only when used, so that the cache key
        and extraction.json of a run without such rates stay what they were before it."""
        settings = asdict(self)
        if not self.sizes:
            del settings["sizes"]
        return settings


@dataclass
class Decoded:
    """One video's samples: per rate, the frames `[T, H, W, 3]` uint8 and their times."""

    frames: dict[float, np.ndarray]
    times: dict[float, np.ndarray]
    audio: np.ndarray | None
    duration: float
    size: tuple[int, int]


def _grid(duration: float, rate: float, max_frames: int) -> np.ndarray:
    """Target times: every 1/rate seconds (centred in its interval), thinned to max_frames."""
    count = max(1, int(duration * rate))
    times = (np.arange(count) + 0.5) / rate
    if count > max_frames:
        times = times[np.linspace(0, count - 1, max_frames).round().astype(int)]
    return times


def _rgb(frame, pixel_dim: int) -> np.ndarray:
    """The frame upright, its short side scaled to pixel_dim, as `[H, W, 3]` uint8."""
    width, height = frame.width, frame.height
    rotation = int(getattr(frame, "rotation", 0) or 0) % 360
    scale = pixel_dim / min(width, height)
    out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
    image = frame.to_ndarray(format="rgb24", width=out_w, height=out_h)
    if rotation:
        image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
    return image


def _duration(container, stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return 0.0


def _video_samples(container, stream, spec: DecodeSpec, duration: float) -> tuple[dict, dict]:
    """Per rate, the latest frame shown at each target time (converted once, when kept)."""
    grids = {rate: _grid(duration, rate, spec.max_frames) for rate in spec.rates}
    kept: dict[float, list[np.ndarray]] = {rate: [] for rate in spec.rates}
    held, held_rgb = None, {}

    def take(frame, rate: float) -> np.ndarray:
        size = spec.pixels(rate)
        if size not in held_rgb:
            held_rgb[size] = _rgb(frame, size)
        return held_rgb[size]

    for frame in container.decode(stream):
        if frame.time is None:
            continue
        for rate, grid in grids.items():
            while len(kept[rate]) < len(grid) and grid[len(kept[rate])] < frame.time:
                # a target before the first frame takes the first frame
                kept[rate].append(take(held if held is not None else frame, rate))
        if all(len(kept[rate]) == len(grid) for rate, grid in grids.items()):
            break
        held, held_rgb = frame, {}
    if held is None:
        raise DecodeError("no video frame could be decoded")
    for rate, grid in grids.items():
        kept[rate] += [take(held, rate)] * (len(grid) - len(kept[rate]))
    return {rate: np.stack(images) for rate, images in kept.items()}, grids


def _audio(path: Path, spec: DecodeSpec) -> np.ndarray | None:
    """Mono float32 samples at spec.audio_rate, or None without an audio track."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        resampler = av.AudioResampler(format="flt", layout="mono", rate=spec.audio_rate)
        limit = int(spec.max_audio_seconds * spec.audio_rate)
        pieces, total = [], 0
        for frame in container.decode(container.streams.audio[0]):
            for out in resampler.resample(frame):
                pieces.append(out.to_ndarray().reshape(-1))
                total += pieces[-1].size
            if total >= limit:
                break
        for out in resampler.resample(None):
            pieces.append(out.to_ndarray().reshape(-1))
    samples = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    return samples[:limit].astype(np.float32, copy=False)


def decode(path: Path, spec: DecodeSpec) -> Decoded:
    """Frames at every rate of `spec` and the soundtrack; DecodeError says why not."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DecodeError("the file has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            duration = _duration(container, stream)
            frames, times = _video_samples(container, stream, spec, duration)
            size = (stream.codec_context.width, stream.codec_context.height)
        audio = _audio(path, spec) if spec.audio_rate else None
    except DecodeError:
        raise
    except (av.FFmpegError, OSError, ValueError, RuntimeError) as err:
        raise DecodeError(f"{type(err).__name__}: {str(err)[:200]}") from None
    return Decoded(frames, times, audio, duration, size)
