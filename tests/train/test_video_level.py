"""Training and testing on a segmented own-video dataset: video-level metrics end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from crosskd.cli import main
from crosskd.config import as_experiment
from crosskd.data.layouts import read_split_list
from crosskd.data.retrieval import RetrievalData
from crosskd.data.segments import SEGMENTS_NAME, Segment, write_segments
from crosskd.data.synth import SynthSpec, example_config, write_synthetic
from crosskd.datasets.catalogue import OWN_VIDEOS
from crosskd.inference import load_model, score_split, scores_and_querybank
from crosskd.metrics import video_t2v_metrics
from crosskd.train.report import VIDEO_LEVEL, format_result, summarize_seeds
from train_support import run_config

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")
#: segments per video of the test list's 12 items (the other lists: 3 each)
TEST_VIDEOS = (1, 2, 4, 5)


def _segmented(root: Path) -> dict[str, Segment]:
    """Each split list's items cut into consecutive runs, each run the segments of a video."""
    table = {}
    for name in ("train_list.txt", "val_list.txt", "test_list.txt"):
        items = read_split_list(root / name, OWN_VIDEOS.layout, name)
        sizes = TEST_VIDEOS if name == "test_list.txt" else (3,) * (len(items) // 3 + 1)
        bounds = np.cumsum((0, *sizes))
        for video, (begin, end) in enumerate(zip(bounds, bounds[1:])):
            for index, item in enumerate(items[begin:end]):
                table[item] = Segment(f"{name[:-9]}{video}", 10.0 * index, 10.0 * index + 10)
    return table


@pytest.fixture(scope="module")
def segmented(tmp_path_factory) -> Path:
    """A folder with a whole-video own dataset (whole/), the same items as segments of
    videos (segmented/) and a training config of each."""
    folder = tmp_path_factory.mktemp("segments")
    spec = SynthSpec(dataset="own-videos", videos=60, captions_per_video=3,
                     caption_tokens=(2, 6), max_expert_tokens=4,
                     visual_dims={name: 12 for name in SynthSpec().visual_dims})
    root = write_synthetic(spec, folder / "whole")
    shutil.copytree(folder / "whole", folder / "segmented")
    write_segments(folder / "segmented" / root.relative_to(folder / "whole"), _segmented(root))
    for name in ("whole", "segmented"):
        config = run_config(example_config(spec, folder / name, split_name="test",
                                           max_text_tokens=6), folder / "runs", epochs=1,
                            tensorboard=True)
        (folder / f"{name}.json").write_text(json.dumps({**config, "seed": 0}), encoding="utf-8")
    return folder


def _train(folder: Path, name: str) -> tuple[dict, Path]:
    """`crosskd train` of the dataset `name`: its `--out` JSON and its run folder."""
    out = folder / f"{name}-train.json"
    assert main(["train", "--config", str(folder / f"{name}.json"), "--device", "cpu",
                 "--out", str(out)]) == 0
    (run_dir,) = (folder / "runs" / name).iterdir()
    return json.loads(out.read_text()), run_dir


@pytest.fixture(scope="module")
def segmented_run(segmented) -> tuple[dict, Path]:
    """One epoch trained on the segmented dataset: its `--out` JSON and its run folder."""
    return _train(segmented, "segmented")


def reference_video_r1(sims: np.ndarray, masks: np.ndarray, of_item: np.ndarray) -> float:
    """Video-level R@1 by its definition, one caption at a time."""
    per_item = sims.shape[0] // sims.shape[1]
    first = []
    for row in np.flatnonzero(masks.reshape(-1)):
        best = {video: sims[row, of_item == video].max() for video in set(of_item.tolist())}
        own = best[of_item[row // per_item]]
        first.append(all(score < own for video, score in best.items()
                         if video != of_item[row // per_item]))
    return 100 * float(np.mean(first))


def test_segmented_training_and_testing_report_video_level_metrics(segmented, segmented_run,
                                                                   tmp_path, capsys):
    trained, run_dir = segmented_run
    video_level = trained["video_level"]
    assert video_level["t2v"].keys() == trained["t2v"].keys()
    assert video_level["v2t"].keys() == trained["v2t"].keys()
    assert video_level["protocol"] == {**trained["protocol"], "num_videos": len(TEST_VIDEOS),
                                       "num_segments": sum(TEST_VIDEOS)}
    (row,) = json.loads((run_dir / "metrics.json").read_text())
    assert {f"val_video_level_{d}_metrics_R1" for d in ("t2v", "v2t")} <= row.keys()
    _check_tensorboard(run_dir, trained)

    tested = tmp_path / "test.json"
    capsys.readouterr()
    assert main(["test", "--resume", str(run_dir), "--out", str(tested)]) == 0
    printed = capsys.readouterr().out
    assert f"{VIDEO_LEVEL}:" in printed and "4 videos cut into 12 segments" in printed
    result = json.loads(tested.read_text())
    assert result == trained

    experiment = as_experiment(json.loads((segmented / "segmented.json").read_text()))
    data = RetrievalData.load(experiment.data)
    model = load_model(experiment.model, run_dir / "model_best.pth", CPU)
    sims = score_split(model, data.eval, CPU)
    masks = data.eval.query_masks
    assert result["video_level"]["t2v"]["R1"] == pytest.approx(
        reference_video_r1(sims, masks, data.eval.segment_videos.of_item))


def _check_tensorboard(run_dir: Path, trained: dict) -> None:
    """The validation and test scalars hold the video-level metrics under their own tags."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"val/video_level_t2v_metrics_R1", "val/video_level_v2t_metrics_MedR"} <= set(tags)
    (recorded,) = events.Scalars("test/video_level_t2v_metrics_R1")
    assert recorded.value == pytest.approx(trained["video_level"]["t2v"]["R1"])


def test_qbnorm_reports_video_level_t2v_after_normalisation(segmented, segmented_run,
                                                            tmp_path, capsys):
    _, run_dir = segmented_run
    out = tmp_path / "qbnorm.json"
    assert main(["test", "--resume", str(run_dir), "--qbnorm", "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("before QB-Norm") == 2
    video_level = json.loads(out.read_text())["video_level"]

    experiment = as_experiment(json.loads((segmented / "segmented.json").read_text()))
    data = RetrievalData.load(experiment.data)
    model = load_model(experiment.model, run_dir / "model_best.pth", CPU)
    sims, bank = scores_and_querybank(model, data, CPU, 20.0)
    of_item, masks = data.eval.segment_videos.of_item, data.eval.query_masks
    assert video_level["qbnorm"]["t2v_before"] == video_t2v_metrics(sims, of_item, masks)
    bank.normalise_in_place(sims)
    assert video_level["t2v"] == video_t2v_metrics(sims, of_item, masks)


def test_a_whole_video_dataset_reports_no_video_level(segmented, capsys):
    assert not (segmented / "whole" / "high-quality" / "structured-symlinks"
                / SEGMENTS_NAME).exists()
    trained, run_dir = _train(segmented, "whole")
    assert set(trained) == {"t2v", "v2t", "protocol"}
    (row,) = json.loads((run_dir / "metrics.json").read_text())
    assert not [key for key in row if "video_level" in key]
    assert VIDEO_LEVEL not in capsys.readouterr().out


def _result(r1: float, video_r1: float) -> dict:
    """A test result of a segmented split whose only varying metric is R@1."""
    def level(value: float, protocol: dict) -> dict:
        row = {"R1": value, "R5": 50.0, "R10": 60.0, "R50": 90.0, "MedR": 4.0, "MeanR": 9.0,
               "geometric_mean_R1-R5-R10": value}
        return {"t2v": row, "v2t": dict(row), "protocol": protocol}

    protocol = {"dataset": "own-videos", "split": "test", "captions_per_video": 3,
                "num_queries": 36, "num_videos": 12}
    return {**level(r1, protocol), "video_level": level(
        video_r1, {**protocol, "num_videos": 4, "num_segments": 12})}


def test_seeds_summarise_the_video_level_metrics_too():
    summary = summarize_seeds({0: _result(10.0, 30.0), 1: _result(20.0, 50.0)})
    assert summary["mean"]["video_level"]["t2v"]["R1"] == 40.0
    assert summary["std"]["video_level"]["v2t"]["R1"] == 10.0
    text = format_result("seeds", summary)
    segment_level, video_level = text.split(f"{VIDEO_LEVEL}:")
    assert "15.0 (5.0)" in segment_level and "40.0 (10.0)" in video_level
    assert "4 videos cut into 12 segments" in video_level


def test_a_damaged_segments_json_stops_the_test_in_one_line(segmented, segmented_run, tmp_path,
                                                           capsys):
    _, run_dir = segmented_run
    data = tmp_path / "damaged"
    shutil.copytree(segmented / "segmented", data)
    table = data / "high-quality" / "structured-symlinks" / SEGMENTS_NAME
    damaged = json.loads(table.read_text())
    first = next(iter(damaged["segments"]))
    damaged["segments"][first]["end"] = -1
    table.write_text(json.dumps(damaged), encoding="utf-8")
    capsys.readouterr()
    assert main(["test", "--resume", str(run_dir), "--out", str(tmp_path / "out.json"),
                 "--set", f"data_loader.args.data_dir={data}"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and f"{table} entry '{first}'" in error
    assert "0 <= start < end" in error and not (tmp_path / "out.json").exists()
