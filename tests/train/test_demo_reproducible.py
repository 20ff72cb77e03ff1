"""`crosskd demo` twice with one seed: the same video bytes, the same features, the same
tables and the same moment answered (the encoders run on one thread, so the machine's cores
do not shape the files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crosskd.cli import main
from crosskd.extract.synthetic_videos import write_video

FEATURES = "data/high-quality/structured-symlinks"
MOMENT_FEATURES = "moments-data/high-quality/structured-symlinks"


def _files(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes()
            for path in sorted(root.rglob("*")) if path.is_file()}


def _differing(first: Path, second: Path) -> list[str]:
    a, b = _files(first), _files(second)
    assert a.keys() == b.keys()
    return [name for name in a if a[name] != b[name]]


def test_the_same_seed_gives_the_same_videos_features_tables_and_moment(tmp_path, capsys):
    runs, moment_lines = [tmp_path / "first", tmp_path / "second"], []
    for out in runs:
        assert main(["demo", "--out", str(out), "--videos", "24", "--epochs", "1",
                     "--seed", "5"]) == 0
        printed = capsys.readouterr().out.replace(str(out), "OUT").splitlines()
        moment_lines.append(printed[-5:])
    first, second = runs
    assert len(list((first / "videos").glob("*.mp4"))) == 24
    assert _differing(first / "videos", second / "videos") == []
    assert _differing(first / FEATURES, second / FEATURES) == []
    assert _differing(first / "moments-videos", second / "moments-videos") == []
    assert _differing(first / MOMENT_FEATURES, second / MOMENT_FEATURES) == []
    for table in ("results.md", "results.json", "moment.json"):
        assert (first / table).read_bytes() == (second / table).read_bytes(), table
    assert moment_lines[0] == moment_lines[1]
    assert moment_lines[0][0].startswith("moments: OUT/moments-index")


def test_a_frame_size_the_encoder_would_thread_gives_the_same_bytes(tmp_path):
    """At 640x480 libx264 picks several threads by itself; the files must still agree."""
    frames = np.random.default_rng(0).integers(0, 256, (12, 480, 640, 3), dtype=np.uint8)
    first, second = (write_video(tmp_path / name, frames, 12) for name in ("a.mp4", "b.mp4"))
    assert first.read_bytes() == second.read_bytes()
    assert b"threads=1 " in first.read_bytes()  # x264 records its settings in the stream
