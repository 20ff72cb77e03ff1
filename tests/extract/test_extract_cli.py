"""`crosskd extract` end to end: awkward videos in, a dataset train.py and test.py run on,
read back by crosskd's safe reader; sharding and merging; resuming after a kill."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest


from crosskd.cli import main  # noqa: E402
from crosskd.data.pickles import load_small_pickle  # noqa: E402
from crosskd.errors import UserError  # noqa: E402
from crosskd.extract.synthetic_videos import write_collection  # noqa: E402
from videos import odd_videos  # noqa: E402

ROOT = "high-quality/structured-symlinks"
DEMO = ["--experts", "demo", "--text-encoder", "demo"]


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("videos")
    captions = write_collection(folder, 12)
    odd = odd_videos(folder / "odd")
    with open(captions, "a", encoding="utf-8") as handle:
        for name in [*odd, "ghost"]:
            handle.write(json.dumps({"video": name, "captions": [f"the {name} one",
                                                                 f"a {name} video"]}) + "\n")
    return folder, captions


def _extract(collection, out: Path, *extra: str) -> int:
    folder, captions = collection
    return main(["extract", str(folder), "--captions", str(captions), "--out", str(out),
                 *DEMO, *extra])


def test_extract_train_test(collection, tmp_path):
    out = tmp_path / "data"
    assert _extract(collection, out) == 0
    record = json.loads((out / "extraction.json").read_text())
    report = record["report"]
    assert [row["video"] for row in report["failed"]] == ["corrupt"]
    assert report["without_video"] == ["ghost"] and report["videos"] == 17
    assert {vid for vid, row in record["videos"].items() if "audio" in row["missing"]} == {
        "silent", "vfr", "portrait", "tiny"}
    assert record["text_encoder"]["name"] == "demo"
    keyframe = record["videos"]["portrait"]["keyframe"]
    assert (out / keyframe["file"]).is_file() and 0 < keyframe["time"] < 2
    assert {e["name"] for e in record["experts"]} == {"demo-colour", "demo-motion", "demo-audio"}
    # the safe reader reads what extract wrote
    root = out / ROOT
    audio = load_small_pickle(root / "aggregated_audio_feats/audio-tokens.pickle")
    assert np.isnan(audio["silent"]) and audio["plain"].shape[1] == 128
    text = load_small_pickle(root / "aggregated_text_feats/hashed-words-300d.pkl")
    assert len(text["plain"]) == 2 and text["plain"][0].shape == (3, 300)
    colour = load_small_pickle(root / record["experts"][0]["file"])
    assert "corrupt" not in colour and colour["tiny"].shape == (72,)
    config = out / "config.json"
    assert main(["train", "--config", str(config), "--device", "cpu",
                 "--set", "trainer.epochs=1", "--out", str(tmp_path / "train.json")]) == 0
    (run_dir,) = sorted((out / "runs" / "config").iterdir())
    assert main(["test", "--config", str(config), "--resume", str(run_dir),
                 "--eval_from_training_config", "--out", str(tmp_path / "test.json")]) == 0
    tested = json.loads((tmp_path / "test.json").read_text())
    assert tested == json.loads((tmp_path / "train.json").read_text())


def _pickles(out: Path) -> dict[str, object]:
    return {str(p.relative_to(out)): load_small_pickle(p) for p in sorted((out / ROOT).rglob("*.p*"))}


def _flat(value: object) -> np.ndarray:
    """A feature, a list of caption arrays or a list of word lists, as one array."""
    if isinstance(value, list):
        return np.concatenate([np.asarray(part).reshape(-1) for part in value]) if value else \
            np.zeros(0)
    return np.asarray(value)


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].keys() == b[name].keys(), name
        for vid in a[name]:
            np.testing.assert_array_equal(_flat(a[name][vid]), _flat(b[name][vid]))


def test_shards_then_merge_equal_one_run(collection, tmp_path, capsys):
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    assert _extract(collection, whole) == 0
    assert _extract(collection, sharded, "--shard", "1/2") == 0
    assert "shard done" in capsys.readouterr().out and not (sharded / "config.json").exists()
    assert _extract(collection, sharded, "--merge") == 2  # shard 0 has not run
    assert _extract(collection, sharded, "--shard", "0/2") == 0
    assert (sharded / "config.json").is_file()
    _assert_same(_pickles(whole), _pickles(sharded))


@pytest.mark.slow
def test_a_killed_run_resumes_with_the_finished_videos(tmp_path, caplog):
    folder = tmp_path / "videos"
    captions = write_collection(folder, 80)
    out = tmp_path / "data"
    command = [sys.executable, "-m", "crosskd", "extract", str(folder), "--captions",
               str(captions), "--out", str(out), *DEMO]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if len(list((out / ".extract-cache").glob("*/*.npz"))) >= 5:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    cached = len(list((out / ".extract-cache").glob("*/*.npz")))
    with caplog.at_level(logging.INFO, logger="crosskd.extract.job"):
        assert main(["extract", str(folder), "--captions", str(captions), "--out", str(out),
                     *DEMO]) == 0
    assert f"{80 - cached} videos extracted, {cached} were cached" in caplog.text
    assert len(load_small_pickle(out / ROOT / "aggregated_text_feats/hashed-words-300d.pkl")) == 80


def test_torchrun_ranks_take_their_shard_and_a_shard_flag_wins(monkeypatch, tmp_path):
    """The command hands extraction the shard of its process context (crosskd.process)."""
    from crosskd.extract import job
    from crosskd.extract.job import parse_shard

    given = []
    monkeypatch.setattr(job, "extract", lambda options: given.append(options))
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    command = ["extract", str(tmp_path), "--out", str(tmp_path / "out"), "--device", "cpu"]
    assert main(command) == 0 and main([*command, "--shard", "1/2"]) == 0
    assert [(options.shard, options.device) for options in given] == [((3, 4), "cpu"),
                                                                      ((1, 2), "cpu")]
    assert parse_shard("2/5") == (2, 5)
    with pytest.raises(UserError, match="I/N"):
        parse_shard("2")


@pytest.mark.parametrize("make, message", [(lambda p: p / "missing.csv", "no such file"),
                                           (lambda p: p, "is a folder, not a file")])
def test_a_bad_captions_path_is_refused_before_anything_runs(tmp_path, capsys, caplog, make,
                                                             message):
    """argparse names --captions and exits 2; no device line or other log comes first."""
    caplog.set_level(logging.INFO)
    with pytest.raises(SystemExit) as stop:
        main(["extract", str(tmp_path), "--captions", str(make(tmp_path)), "--out",
              str(tmp_path / "out")])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --captions: {make(tmp_path)}" in err and message in err
    assert not caplog.records
    assert not (tmp_path / "out").exists()
