"""Test videos made in the test itself: ordinary, without audio, variable frame rate,
portrait, tiny, and a corrupt file; collections of synthetic scenes, with or without sound."""

from __future__ import annotations

import json
from pathlib import Path

from crosskd.extract.synthetic_videos import frames, scenes, soundtrack, write_video


def odd_videos(folder: Path) -> dict[str, Path]:
    """One video of each awkward kind, named by its kind."""
    folder.mkdir(parents=True, exist_ok=True)
    scene = scenes(1, seed=3)[0]
    out = {}
    out["plain"] = write_video(folder / "plain.mp4", frames(scene, 64, 48, 24), 12,
                               soundtrack(scene, 2.0))
    out["silent"] = write_video(folder / "silent.mp4", frames(scene, 64, 48, 24), 12)
    times = [0.0, 0.05, 0.1, 0.5, 0.55, 1.2, 1.25, 1.3, 1.9, 1.95]
    out["vfr"] = write_video(folder / "vfr.mp4", frames(scene, 64, 48, len(times)), 10,
                             times=times)
    out["portrait"] = write_video(folder / "portrait.mp4", frames(scene, 36, 80, 12), 6)
    out["tiny"] = write_video(folder / "tiny.mp4", frames(scene, 10, 6, 8), 4)
    corrupt = folder / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    out["corrupt"] = corrupt
    return out


def scene_videos(folder: Path, count: int, first: int = 0, sound: bool = True,
                 seed: int = 0) -> Path:
    """Scenes `first .. first + count - 1` of a seeded draw as short MP4s in `folder`, with a
    soundtrack or none (no audio stream), and their captions as `captions.jsonl` there."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for scene in scenes(first + count, seed)[first:]:
        audio = soundtrack(scene, 1.0) if sound else None
        write_video(folder / f"{scene.video_id}.mp4", frames(scene, 48, 32, 8), 8, audio)
        lines.append(json.dumps({"video": scene.video_id, "captions": scene.captions()}))
    captions = folder / "captions.jsonl"
    captions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return captions
