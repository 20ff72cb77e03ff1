"""Video decoding with PyAV: frames sampled by timestamp at fixed rates, the soundtrack
resampled to mono (frames in one pass over the file, the soundtrack in a second, read side
by side).

A sampler holds the latest decoded frame and emits it at each target time, so a variable
frame rate, dropped frames or a late first frame all give frames on the same fixed grid.
Frames are converted to RGB (rotated upright, short side scaled to `pixel_dim`) only when a
sampler keeps them; at most `max_frames` per rate are kept (the grid thins out evenly for
longer videos), so memory is bounded however long the video is.

A segmented extraction decodes a video's segments (`Span`s) in the same two passes: each
segment has its own grid (`max_frames` per segment) and its own soundtrack slice (at most
`max_audio_seconds` per segment), and is handed on as soon as the frames pass its end, so
memory holds one segment's samples, not the video's.
"""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

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
    """One video's samples, or one segment's: per rate, the frames `[T, H, W, 3]` uint8 and
    their times, and the soundtrack, all from `start` (seconds into the video; 0 for a whole
    video), so an expert sees a segment as it would a short video of its own."""

    frames: dict[float, np.ndarray]
    times: dict[float, np.ndarray]
    audio: np.ndarray | None
    duration: float
    size: tuple[int, int]
    start: float = 0.0


@dataclass(frozen=True)
class Span:
    """A part of a video to decode: frames on its own grid in `[start, end)`, the soundtrack
    from start to end, to the track's end for the video's `last` part."""

    start: float
    end: float
    last: bool = True


def _grid(span: Span, rate: float, max_frames: int) -> np.ndarray:
    """Target times: every 1/rate seconds from the span's start (centred in its interval),
    thinned to max_frames."""
    count = max(1, int((span.end - span.start) * rate))
    times = (np.arange(count) + 0.5) / rate
    if count > max_frames:
        times = times[np.linspace(0, count - 1, max_frames).round().astype(int)]
    return span.start + times


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


class _Sampler:
    """The frames of one span, per rate: at each target time the latest frame shown
    (converted once per size, when kept)."""

    def __init__(self, span: Span, spec: DecodeSpec) -> None:
        self.span, self.spec = span, spec
        self.grids = {rate: _grid(span, rate, spec.max_frames) for rate in spec.rates}
        self.kept: dict[float, list[np.ndarray]] = {rate: [] for rate in spec.rates}

    def take_until(self, time: float, held, converted: dict[int, np.ndarray]) -> bool:
        """Fill the targets before `time` with `held`; True when every target is filled."""
        for rate, grid in self.grids.items():
            kept = self.kept[rate]
            while len(kept) < len(grid) and grid[len(kept)] < time:
                kept.append(self._rgb(held, rate, converted))
        return all(len(self.kept[rate]) == len(grid) for rate, grid in self.grids.items())

    def _rgb(self, frame, rate: float, converted: dict[int, np.ndarray]) -> np.ndarray:
        size = self.spec.pixels(rate)
        if size not in converted:
            converted[size] = _rgb(frame, size)
        return converted[size]

    def samples(self) -> tuple[dict[float, np.ndarray], dict[float, np.ndarray]]:
        """The kept frames and their times from the span's start."""
        return ({rate: np.stack(images) for rate, images in self.kept.items()},
                {rate: grid - self.span.start for rate, grid in self.grids.items()})


class _Soundtrack:
    """The soundtrack read forward once, resampled to mono: each span's samples in turn (at
    most `max_audio_seconds` from its start), holding no more than one span's."""

    def __init__(self, container, spec: DecodeSpec) -> None:
        import av

        self.rate = spec.audio_rate
        self.limit = int(spec.max_audio_seconds * spec.audio_rate)
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=spec.audio_rate)
        self.pieces = self._pieces(container)
        self.held, self.offset = np.zeros(0, np.float32), 0

    def _pieces(self, container) -> Iterator[np.ndarray]:
        for frame in container.decode(container.streams.audio[0]):
            for out in self.resampler.resample(frame):
                yield out.to_ndarray().reshape(-1)
        for out in self.resampler.resample(None):
            yield out.to_ndarray().reshape(-1)

    def samples(self, span: Span) -> np.ndarray:
        """The span's samples; what lies before it is read and dropped."""
        first = round(span.start * self.rate)
        stop = first + self.limit if span.last else min(first + self.limit,
                                                        round(span.end * self.rate))
        pieces, base = [self.held], self.offset
        read = base + len(self.held)
        while read < stop:
            piece = next(self.pieces, None)
            if piece is None:
                break
            if read + len(piece) <= first:  # before the span: dropped
                pieces, base = [], read + len(piece)
            else:
                pieces.append(piece)
            read += len(piece)
        data = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        cut = max(0, min(stop - base, len(data)))
        self.held, self.offset = data[cut:], base + cut
        return data[max(0, first - base):cut].astype(np.float32, copy=False)


@contextmanager
def _reading() -> Iterator[None]:
    """A failure of the file (or of FFmpeg reading it) as a DecodeError saying why."""
    import av

    try:
        yield
    except DecodeError:
        raise
    except (av.FFmpegError, OSError, ValueError, RuntimeError) as err:
        raise DecodeError(f"{type(err).__name__}: {str(err)[:200]}") from None


class VideoFile:
    """An open video: its duration, and spans of it decoded in one pass over its frames and
    one over its soundtrack, both streamed: a span is yielded as soon as the frames pass its
    end, so memory holds one span's samples however long the video is."""

    def __init__(self, path: Path, spec: DecodeSpec) -> None:
        self.spec = spec
        self._open: list = []
        try:
            self._start(path, spec)
        except BaseException:
            self.close()
            raise

    def _start(self, path: Path, spec: DecodeSpec) -> None:
        import av

        with _reading():
            self.container = self._opened(av.open(str(path)))
            if not self.container.streams.video:
                raise DecodeError("the file has no video stream")
            self.stream = self.container.streams.video[0]
            self.stream.thread_type = "AUTO"
            self.duration = _duration(self.container, self.stream)
            self.size = (self.stream.codec_context.width, self.stream.codec_context.height)
            sound = self._opened(av.open(str(path))) if spec.audio_rate else None
            self.soundtrack = (_Soundtrack(sound, spec) if sound is not None
                               and sound.streams.audio else None)

    def _opened(self, container):
        self._open.append(container)
        return container

    def close(self) -> None:
        for container in self._open:
            container.close()

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def spans(self, spans: list[Span]) -> Iterator[Decoded]:
        """Each of `spans` (in time order, not overlapping) decoded; DecodeError says why not."""
        with _reading():
            for span, (frames, times) in self._frames(spans):
                audio = self.soundtrack.samples(span) if self.soundtrack is not None else None
                yield Decoded(frames, times, audio, span.end - span.start, self.size, span.start)

    def _frames(self, spans: list[Span]) -> Iterator[tuple[Span, tuple[dict, dict]]]:
        """Each span's frames, in one pass over the file (the last frame fills the targets
        after the stream's end)."""
        pending = iter(spans)
        sampler = _Sampler(next(pending), self.spec)
        held, converted = None, {}
        for frame in self.container.decode(self.stream):
            if frame.time is None:
                continue
            # a target before the first frame takes the first frame
            while sampler.take_until(frame.time, held if held is not None else frame, converted):
                yield sampler.span, sampler.samples()
                span = next(pending, None)
                if span is None:
                    return
                sampler = _Sampler(span, self.spec)
            held, converted = frame, {}
        if held is None:
            raise DecodeError("no video frame could be decoded")
        for rest in itertools.chain([sampler], (_Sampler(span, self.spec) for span in pending)):
            rest.take_until(np.inf, held, converted)
            yield rest.span, rest.samples()


def decode(path: Path, spec: DecodeSpec) -> Decoded:
    """Frames at every rate of `spec` and the soundtrack of a whole video; DecodeError says
    why not."""
    with VideoFile(path, spec) as video:
        (decoded,) = video.spans([Span(0.0, video.duration)])
    return decoded
