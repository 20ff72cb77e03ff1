"""`crosskd demo` runs offline end to end and says where it wrote everything."""

from __future__ import annotations

import json
import shlex

import pytest

from crosskd.cli import main
from crosskd.commands import demo
from crosskd.commands.demo import _curves, _demo_config
from crosskd.config import parse_experiment
from crosskd.search.moments import Moment
from crosskd.train.plots import plot_runs


@pytest.mark.parametrize("features", ["videos", "synthetic"])
def test_demo_trains_both_variants_and_writes_table_and_plot(tmp_path, capsys, monkeypatch,
                                                              features):
    out = tmp_path / "demo"
    titles = []
    monkeypatch.setattr(demo, "plot_runs",
                        lambda runs, path, title: titles.append(title) or plot_runs(runs, path, title))
    assert main(["demo", "--out", str(out), "--epochs", "1", "--videos", "40", "--seed", "7",
                 "--features", features]) == 0
    assert "synthetic data, seed 7" in titles[0]
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"CE+", "CE+ + caption KD"}
    dataset, split = ("own-videos", "test") if features == "videos" else ("MSRVTT", "full-test")
    assert results["CE+"]["protocol"]["split"] == split
    assert (out / "demo.png").stat().st_size > 1000
    assert "| CE+ + caption KD |" in printed and f"protocol: {dataset} {split} split" in printed
    assert str(out / "demo.png") in printed
    assert len(list((out / "runs").iterdir())) == 2
    assert f"crosskd serve {out / 'index'}" in printed  # the demo ends in search
    assert main(["search", str(out / "index"), "--caption", f"{_first_video(out)}:0",
                 "-k", "3"]) == 0
    if features == "videos":
        assert (out / "data" / "extraction.json").is_file()
        assert len(list((out / "videos").glob("*.mp4"))) == 40
        assert main(["search", str(out / "index"), "a red circle", "-k", "3", "--json"]) == 0
        assert len(json.loads(capsys.readouterr().out.splitlines()[-1])["results"]) == 3
        assert (out / "index" / "media.json").is_file()  # the page plays the test videos
        _check_moment(out, printed, capsys)
    else:  # no videos, no moments
        assert "moments:" not in printed and not (out / "moment.json").exists()


def _check_moment(out, printed, capsys):
    """The demo ends in one query answered with a moment of the long videos, the same in
    moment.json and on the terminal, and the search it prints runs."""
    answer = json.loads((out / "moment.json").read_text())
    assert answer["part"] == {"video_id": "long0003", "start": 8.0, "end": 10.0}
    timed = [json.loads(line) for line in (out / "moments-videos" / "captions.jsonl").open()]
    assert {"video": "long0003", "caption": answer["query"], "start": 8.0, "end": 10.0} in timed
    hit = answer["hit"]
    moment = Moment(hit["video_id"], hit["start"], hit["end"])
    assert hit["segment_id"].startswith(hit["video_id"] + "@")
    assert hit["end"] - hit["start"] == 2.0 and answer["parts_found"]["queries"] == 64
    verdict = "the right part" if answer["right"] else \
        "not the right part, which is long0003 00:08-00:10"
    *_, moments, query, best, parts, command = printed.splitlines()
    assert moments.startswith(f"moments: {out / 'moments-index'} (4 videos of 8 parts")
    assert query == f'query:   "{answer["query"]}"'
    assert best.startswith(f"best:    {hit['video_id']} {moment.clock()} "
                           f"(segment {hit['segment_id']}, ") and best.endswith(verdict)
    assert parts.startswith(f"parts:   {answer['parts_found']['found']} of 64 ")
    program, *args = shlex.split(command.removeprefix("next:"))
    assert program == "crosskd" and args[-1] == "--per-video"
    assert main([*args, "-k", "4", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out.splitlines()[-1])["results"]
    assert len({found["video_id"] for found in hits}) == 4  # one moment per long video
    assert hits[0]["segment_id"] == hit["segment_id"]


def _first_video(out):
    return json.loads((out / "index" / "manifest.json").read_text())["video_ids"][0]


def test_the_plot_marks_the_epoch_the_monitor_kept_later_on_ties(tmp_path):
    config = _demo_config("msrvtt-demo-ce", tmp_path, seed=0, epochs=4)
    monitor = "val_t2v_metrics_geometric_mean_R1-R5-R10"
    history = [{"epoch": 1, "loss": 0.5, monitor: 40.0, "val_t2v_metrics_R1": 20.0},
               {"epoch": 2, "loss": 0.3, monitor: 55.0, "val_t2v_metrics_R1": 30.0},
               {"epoch": 3, "loss": 0.2},
               {"epoch": 4, "loss": 0.1, monitor: 55.0, "val_t2v_metrics_R1": 29.0}]
    (tmp_path / "metrics.json").write_text(json.dumps(history))
    result = {"t2v": {"R1": 25.0, "geometric_mean_R1-R5-R10": 50.0}}
    curves = _curves(parse_experiment(config), tmp_path, result)
    assert curves.best_epoch == 4 and curves.epochs == [1, 2, 4]
    assert curves.loss_epochs == [1, 2, 3, 4] and curves.test_r1 == 25.0
    assert plot_runs({"CE+": curves}, tmp_path / "p.png", "synthetic data, seed 0").stat().st_size

