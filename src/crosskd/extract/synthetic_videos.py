"""Synthetic videos for the demo and the tests: a coloured shape moving in a named direction
over a coloured background, a low or high tone or silence as the soundtrack, and captions
that say all of it in different words. Encoded with PyAV (H.264 + AAC in MP4), so they go
through exactly the decoding path of real videos."""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (40, 70, 230),
           "yellow": (240, 220, 40), "white": (245, 245, 245), "purple": (150, 50, 190)}
BACKGROUNDS = {"black": (10, 10, 10), "grey": (128, 128, 128), "brown": (120, 70, 30),
               "navy": (10, 20, 90)}
SHAPES = ("circle", "square", "cross")
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
SOUNDS = {"a low tone": 220.0, "a high tone": 1760.0, "silence": 0.0}
AUDIO_RATE = 16000
#: the encoders' settings that shape the bytes, fixed: one thread each (the threads an
#: encoder picks depend on the machine's cores, and its output on them), so that a seed
#: gives the same files, features and demo table on every run.
ONE_THREAD = {"threads": "1"}
X264_OPTIONS = {**ONE_THREAD, "preset": "medium", "crf": "23"}


@dataclass(frozen=True)
class Scene:
    """What one synthetic video shows and plays."""

    video_id: str
    shape: str
    colour: str
    background: str
    direction: str
    sound: str

    def captions(self) -> list[str]:
        """Several wordings of the same scene (the retrieval targets)."""
        s, c, b, d = self.shape, self.colour, self.background, self.direction
        heard = "no sound" if self.sound == "silence" else self.sound
        return [f"a {c} {s} moves {d} over a {b} background with {heard}",
                f"on {b} a {c} {s} is going {d}",
                f"{heard} while a {s} coloured {c} slides {d}",
                f"the {c} {s} travels {d} across the {b} screen"]


def scenes(count: int, seed: int = 0, prefix: str = "video") -> list[Scene]:
    """`count` scenes drawn with a fixed seed, as varied as the combinations allow."""
    rng = np.random.default_rng(seed)
    combos = list(itertools.product(SHAPES, COLOURS, BACKGROUNDS, DIRECTIONS, SOUNDS))
    order = rng.permutation(len(combos))
    return [Scene(f"{prefix}{i:04d}", *combos[order[i % len(combos)]]) for i in range(count)]


def _mask(shape: str, size: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    radius = size / 2
    if shape == "circle":
        return xx**2 + yy**2 <= radius**2
    if shape == "cross":
        return (np.abs(xx) < size / 6) | (np.abs(yy) < size / 6)
    return np.ones((size, size), bool)


def frames(scene: Scene, width: int, height: int, count: int) -> np.ndarray:
    """`[count, height, width, 3]` uint8: the shape crossing the frame in its direction."""
    video = np.empty((count, height, width, 3), np.uint8)
    video[:] = BACKGROUNDS[scene.background]
    size = max(3, min(width, height) // 3)
    mask = _mask(scene.shape, size)
    dx, dy = DIRECTIONS[scene.direction]
    for t in range(count):
        progress = t / max(count - 1, 1)
        cx = (width - size) * (0.5 + dx * (progress - 0.5))
        cy = (height - size) * (0.5 + dy * (progress - 0.5))
        x, y = int(round(cx)), int(round(cy))
        video[t, y:y + size, x:x + size][mask] = COLOURS[scene.colour]
    return video


def soundtrack(scene: Scene, seconds: float) -> np.ndarray:
    """Mono float32 samples at AUDIO_RATE: the scene's tone, or near silence."""
    t = np.arange(int(seconds * AUDIO_RATE)) / AUDIO_RATE
    pitch = SOUNDS[scene.sound]
    if not pitch:
        return np.zeros_like(t, dtype=np.float32)
    return (0.3 * np.sin(2 * np.pi * pitch * t)).astype(np.float32)


def write_video(path: Path, video: np.ndarray, fps: int, audio: np.ndarray | None = None,
                times: list[float] | None = None) -> Path:
    """Encode `[T, H, W, 3]` uint8 frames (and mono float audio) into an MP4 with PyAV.

    `times` gives each frame's presentation time in seconds (a variable frame rate);
    by default frames are 1/fps apart.
    """
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options=X264_OPTIONS)
        stream.height, stream.width = video.shape[1] - video.shape[1] % 2, video.shape[2] - video.shape[2] % 2
        stream.pix_fmt = "yuv420p"
        # frame times in ms for a variable rate; else frame i at i / fps
        tick = Fraction(1, 1000) if times else Fraction(1, fps)
        if times:
            stream.codec_context.time_base = tick
        audio_stream = None
        if audio is not None:
            audio_stream = container.add_stream("aac", rate=AUDIO_RATE, layout="mono",
                                                options=ONE_THREAD)
        for i, image in enumerate(video):
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(image[:stream.height, :stream.width]), format="rgb24")
            frame.pts = int(round(times[i] * 1000)) if times else i
            frame.time_base = tick
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        if audio_stream is not None:
            _write_audio(container, audio_stream, audio)
    return path


def _write_audio(container, stream, audio: np.ndarray) -> None:
    import av

    chunk = 1024
    for start in range(0, len(audio), chunk):
        piece = audio[start:start + chunk].reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece), format="flt",
                                           layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def write_collection(folder: Path, count: int, seed: int = 0, seconds: float = 2.0,
                     size: tuple[int, int] = (64, 48), fps: int = 12) -> Path:
    """`count` synthetic videos in `folder` and their captions as `captions.jsonl`."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for scene in scenes(count, seed):
        video = frames(scene, *size, count=int(seconds * fps))
        write_video(folder / f"{scene.video_id}.mp4", video, fps, soundtrack(scene, seconds))
        lines += [json.dumps({"video": scene.video_id, "caption": caption})
                  for caption in scene.captions()]
    (folder / "scenes.json").write_text(json.dumps([asdict(s) for s in scenes(count, seed)]),
                                        encoding="utf-8")
    captions = folder / "captions.jsonl"
    captions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return captions
