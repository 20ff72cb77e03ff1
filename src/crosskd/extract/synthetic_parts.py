"""Long synthetic videos made of parts, for moments: each part is one synthetic scene
(`synthetic_videos`) on another background than the part before it, so the cuts between
parts are shots a detector finds, and the part's captions, timed with its start and end,
say what happens in it."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crosskd.extract.synthetic_videos import Scene, frames, scenes, soundtrack, write_video


def part_scenes(count: int, seed: int = 0, prefix: str = "part") -> list[Scene]:
    """`count` scenes of a seeded draw, each on another background than the one before."""
    chosen: list[Scene] = []
    for scene in scenes(count * 8, seed, prefix):
        if not chosen or scene.background != chosen[-1].background:
            chosen.append(scene)
        if len(chosen) == count:
            return chosen
    raise ValueError(f"no {count} parts of alternating backgrounds in the draw")


def write_parts_video(path: Path, parts: list[Scene], seconds: float,
                      size: tuple[int, int] = (64, 48), fps: int = 12) -> Path:
    """One video of the `parts` in turn, each `seconds` long, with each part's sound."""
    count = int(round(seconds * fps))
    video = np.concatenate([frames(scene, *size, count=count) for scene in parts])
    audio = np.concatenate([soundtrack(scene, count / fps) for scene in parts])
    return write_video(path, video, fps, audio)


def part_times(parts: int, seconds: float) -> list[tuple[float, float]]:
    """Each part's `[start, end)` in seconds."""
    return [(round(i * seconds, 3), round((i + 1) * seconds, 3)) for i in range(parts)]


@dataclass(frozen=True)
class Part:
    """One part of a long video: its scene, shown from `start` to `end` seconds."""

    video_id: str
    scene: Scene
    start: float
    end: float


def collection_parts(videos: int, parts: int, seconds: float, seed: int = 0) -> list[Part]:
    """The parts of `videos` long videos (`long0000`, ...; video `n` drawn with seed
    `seed + n`), in video then time order: what `write_parts_collection` writes."""
    found = []
    for number in range(videos):
        video_id = f"long{number:04d}"
        chosen = part_scenes(parts, seed + number, prefix=f"{video_id}-part")
        found += [Part(video_id, scene, start, end)
                  for scene, (start, end) in zip(chosen, part_times(parts, seconds))]
    return found


def write_parts_collection(folder: Path, videos: int, parts: int, seconds: float,
                           seed: int = 0, size: tuple[int, int] = (64, 48),
                           fps: int = 12, captions_per_part: int = 2) -> Path:
    """`videos` videos of `parts` parts each in `folder` (`long0000.mp4`, ...), and their
    timed captions (`captions.jsonl`: video, caption, start, end); returns the captions."""
    folder.mkdir(parents=True, exist_ok=True)
    every = collection_parts(videos, parts, seconds, seed)
    for video_id, own in itertools.groupby(every, key=lambda part: part.video_id):
        write_parts_video(folder / f"{video_id}.mp4", [part.scene for part in own], seconds,
                          size, fps)
    lines = [json.dumps({"video": part.video_id, "caption": caption, "start": part.start,
                         "end": part.end})
             for part in every for caption in part.scene.captions()[:captions_per_part]]
    captions = folder / "captions.jsonl"
    captions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return captions
