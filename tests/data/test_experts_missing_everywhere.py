"""An expert file in which no video has the expert (sound of a collection of silent clips) is
read as missing for every video, at the width the config gives it, not as a crash."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crosskd.data.features import gather_split
from crosskd.data.picklewriter import write_dict_pickle
from crosskd.data.store import load_packed

VIDEOS = ["v0", "v1", "v2"]


def _packed(tmp_path: Path, name: str, kind: str, items: dict):
    path = tmp_path / f"{name}.pickle"
    write_dict_pickle(path, items.items())
    return load_packed(path, kind, tmp_path / "cache", "float32", None)


def test_fixed_and_token_experts_no_video_has(tmp_path):
    nothing = {vid: float("nan") for vid in VIDEOS}
    colour = _packed(tmp_path, "colour", "expert", nothing)
    audio = _packed(tmp_path, "audio", "expert", nothing)
    text = _packed(tmp_path, "text", "captions",
                   {vid: [np.ones((2, 5), np.float32)] for vid in VIDEOS})
    split = gather_split(VIDEOS[:2], {"colour": [colour], "audio": [audio]}, {"audio"}, text,
                         [], {"colour": 72, "audio": 128}, 5, None)
    assert split.fixed["colour"].shape == (2, 72) and not split.fixed["colour"].any()
    assert split.variable["audio"].values.shape == (0, 128)
    assert not split.avail["colour"].any() and not split.avail["audio"].any()
