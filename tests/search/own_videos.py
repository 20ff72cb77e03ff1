"""Own collections for the search tests: real short videos of synthetic scenes, extracted with
the demo experts (`crosskd extract`), and a randomly initialised model of their config."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from crosskd.cli import main
from crosskd.config import as_experiment, load_config
from crosskd.extract.synthetic_videos import frames, scenes, soundtrack, write_video
from crosskd.models import build_model

DEMO = ["--experts", "demo", "--text-encoder", "demo"]
#: the own collection's name (`crosskd extract --name`): the index, page and report say it
OWN_NAME = "Holiday 2024"


def write_clips(folder: Path, first: int, count: int, look: int | None = None
                ) -> dict[str, list[str]]:
    """Videos `video{first:04d}` onwards in `folder`, each showing its own scene (or, with
    `look`, scene `look`'s pictures and sound under the first id); their captions by id."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn = scenes(max(first + count, (look or 0) + 1))
    written = {}
    for n in range(first, first + count):
        scene, shown = drawn[n], drawn[look if look is not None else n]
        write_video(folder / f"{scene.video_id}.mp4", frames(shown, 48, 32, 8), 8,
                    soundtrack(shown, 1.0))
        written[scene.video_id] = scene.captions()
    return written


def write_captions(path: Path, captions: dict[str, list[str]]) -> Path:
    """A captions file (JSON lines) of the videos given."""
    path.write_text("".join(json.dumps({"video": vid, "captions": texts}) + "\n"
                            for vid, texts in captions.items()), encoding="utf-8")
    return path


def extract(videos: Path, out: Path, *extra: str) -> None:
    """`crosskd extract VIDEOS --out OUT` with the demo experts, which must succeed."""
    assert main(["extract", str(videos), "--out", str(out), *DEMO, *extra]) == 0


def random_model(config: Path, path: Path, seed: int = 0) -> Path:
    """A randomly initialised model of `config`, its state dict saved at `path`."""
    torch.manual_seed(seed)
    torch.save(build_model(as_experiment(load_config(config)).model).state_dict(), path)
    return path


def own_index_args(folder: Path, out: Path, *extra: str) -> list[str]:
    """`crosskd index` of the collection in `folder` (clips/, data/, model.pth, as
    `own_collection` lays it out) into `out`."""
    return ["index", "--checkpoint", str(folder / "model.pth"), "--config",
            str(folder / "data" / "config.json"), "--data", str(folder / "data"),
            "--media-root", str(folder / "clips"), "--out", str(out), *extra]
