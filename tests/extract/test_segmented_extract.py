"""`crosskd extract --segment` end to end on long synthetic videos made of parts, with timed
captions: segments as the dataset's items in every per-item file, segments.json and
extraction.json format 3, splits drawn by video, untimed captions kept by their video, a
video without timed captions indexed but in no split, shots found at the parts' cuts, videos
added with the same cut, and the generated config training on the segments."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from crosskd.cli import main
from crosskd.data.pickles import load_small_pickle
from crosskd.data.segments import read_segments
from crosskd.extract.synthetic_parts import write_parts_collection
from crosskd.extract.synthetic_videos import frames, scenes, soundtrack, write_video
from videos import scene_videos

ROOT = "high-quality/structured-symlinks"
DEMO = ["--experts", "demo", "--text-encoder", "demo"]
LONG = [f"long{i:04d}" for i in range(5)]
WHOLE = "the whole recording, start to end"


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> tuple[Path, Path]:
    """Five videos of three 2-second parts with two timed captions per part, one of them also
    with an untimed caption and one with a caption after its end; and `still`, one 4-second
    scene (no cut) with an untimed caption only."""
    folder = tmp_path_factory.mktemp("long")
    captions = write_parts_collection(folder, len(LONG), 3, 2.0, size=(48, 32), fps=8)
    scene = scenes(1, seed=9)[0]
    write_video(folder / "still.mp4", frames(scene, 48, 32, 32), 8, soundtrack(scene, 4.0))
    extra = [{"video": "long0000", "caption": WHOLE}, {"video": "still", "caption": WHOLE},
             {"video": "long0001", "caption": "after the end", "start": 100, "end": 101}]
    with open(captions, "a", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in extra)
    return folder, captions


def _extract(collection, out: Path, *extra: str) -> int:
    folder, captions = collection
    return main(["extract", str(folder), "--captions", str(captions), "--out", str(out),
                 *DEMO, *extra])


def _record(out: Path) -> dict:
    return json.loads((out / "extraction.json").read_text(encoding="utf-8"))


def _split_lists(out: Path) -> dict[str, list[str]]:
    return {split: (out / ROOT / f"{split}_list.txt").read_text().split()
            for split in ("train", "val", "test")}


@pytest.fixture(scope="module")
def segmented(collection, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("segmented") / "data"
    assert _extract(collection, out, "--segment", "2") == 0
    return out


def test_segments_are_the_items_of_every_per_item_file(segmented):
    record = _record(segmented)
    assert record["format"] == 3 and record["segmentation"] == {"mode": "seconds",
                                                                "seconds": 2.0}
    windows = {s["id"]: (vid, s["start"], s["end"]) for vid, entry in record["videos"].items()
               for s in entry["segments"]}
    assert {vid: [w[1:] for w in windows.values() if w[0] == vid] for vid in LONG} == {
        vid: [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)] for vid in LONG}
    assert [i for i, w in windows.items() if w[0] == "still"] == ["still@0000", "still@0001"]
    table = read_segments(segmented / ROOT, set(windows))
    assert {i: (s.video, s.start, s.end) for i, s in table.segments.items()} == windows
    for path in sorted((segmented / ROOT).rglob("*.p*")):
        assert set(load_small_pickle(path)) == set(windows), path
    for entry in record["videos"].values():
        for segment in entry["segments"]:
            keyframe = segment["keyframe"]
            assert (segmented / keyframe["file"]).is_file()
            assert keyframe["file"] == f"keyframes/{segment['id']}.jpg"
            assert segment["start"] <= keyframe["time"] < segment["end"]
    assert list((segmented / ".extract-cache").glob("*/segments/long0000/long0000@0000.npz"))


def test_splits_are_drawn_by_video_over_the_captioned_segments(segmented):
    record, lists = _record(segmented), _split_lists(segmented)
    video_of = {s["id"]: vid for vid, entry in record["videos"].items()
                for s in entry["segments"]}
    split_of_videos = {split: {video_of[item] for item in items}
                       for split, items in lists.items()}
    assert set.union(*split_of_videos.values()) == set(LONG)
    assert sum(map(len, split_of_videos.values())) == len(LONG)  # no video in two splits
    for split, videos in split_of_videos.items():
        assert {record["videos"][vid]["split"] for vid in videos} == {split}
    raw = load_small_pickle(segmented / ROOT / "raw-captions.pkl")
    assert all(len(raw[item]) == 2 for items in lists.values() for item in items)


def test_untimed_captions_stay_the_videos_and_a_video_without_timed_ones_is_in_no_split(
        segmented):
    record = _record(segmented)
    videos = record["videos"]
    assert videos["long0000"]["captions"] == [WHOLE]
    assert [len(s["captions"]) for s in videos["long0000"]["segments"]] == [2, 2, 2]
    assert len(videos["long0000"]["timed_captions"]) == 6
    assert videos["still"]["split"] is None and videos["still"]["captions"] == [WHOLE]
    assert all(s["captions"] == [] for s in videos["still"]["segments"])
    assert not any(item.startswith("still") for items in _split_lists(segmented).values()
                   for item in items)
    assert record["report"]["without_captions"] == ["still"]
    assert record["report"]["timed_captions_after_end"] == {"long0001": 1}
    assert record["counts"]["segments"] == 17 and record["counts"]["captioned_segments"] == 15


def test_the_generated_config_trains_on_the_segments(segmented, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="crosskd.data.retrieval"):
        assert main(["train", "--config", str(segmented / "config.json"), "--device", "cpu",
                     "--set", "trainer.epochs=1", "--out", str(tmp_path / "test.json")]) == 0
    assert "segment(s): a random ranking" in caplog.text  # its items are counted as segments
    tested = json.loads((tmp_path / "test.json").read_text())
    assert "R1" in tested["t2v"] and "R1" in tested["video_level"]["t2v"]


def test_adding_videos_with_the_same_cut_keeps_splits_and_finished_segments(
        collection, tmp_path, caplog):
    folder, captions = collection
    first, out = tmp_path / "first", tmp_path / "data"
    first.mkdir()
    for vid in LONG[:3]:
        (first / f"{vid}.mp4").symlink_to(folder / f"{vid}.mp4")
    assert main(["extract", str(first), "--captions", str(captions), "--out", str(out),
                 *DEMO, "--segment", "2"]) == 0
    before = {vid: entry["split"] for vid, entry in _record(out)["videos"].items()}
    with caplog.at_level(logging.INFO, logger="crosskd.extract.job"):
        assert _extract(collection, out, "--segment", "2") == 0
    assert "3 videos extracted, 3 were cached" in caplog.text
    after = _record(out)["videos"]
    assert {vid: after[vid]["split"] for vid in before} == before
    assert len(after) == 6 and after["long0004"]["segments"]


def test_shots_are_found_at_the_cuts_and_a_video_without_one_is_one_segment(collection,
                                                                           tmp_path):
    out = tmp_path / "shots"
    assert _extract(collection, out, "--segment", "shots") == 0
    record = _record(out)
    assert record["segmentation"]["mode"] == "shots" and "scenedetect" in record["versions"]
    cuts = {vid: [(s["start"], s["end"]) for s in entry["segments"]]
            for vid, entry in record["videos"].items()}
    assert cuts == {**{vid: [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)] for vid in LONG},
                    "still": [(0.0, 4.0)]}


def test_timed_captions_of_whole_videos_are_their_captions(collection, tmp_path, caplog):
    out = tmp_path / "whole"
    with caplog.at_level(logging.INFO, logger="crosskd.extract.collection"):
        assert _extract(collection, out) == 0
    assert caplog.text.count("timed caption(s) are taken as captions of their whole video") == 1
    record = _record(out)
    assert record["format"] == 2 and "segmentation" not in record
    assert not (out / ROOT / "segments.json").exists()
    assert len(record["videos"]["long0000"]["captions"]) == 7  # untimed, then 6 timed
    assert "segments" not in record["videos"]["long0000"]


def test_untimed_captions_alone_leave_a_segmented_dataset_to_index(tmp_path, caplog):
    captions = scene_videos(tmp_path / "clips", 3)
    out = tmp_path / "data"
    with caplog.at_level(logging.WARNING, logger="crosskd.extract.collection"):
        assert main(["extract", str(tmp_path / "clips"), "--captions", str(captions), "--out",
                     str(out), *DEMO, "--segment", "1"]) == 0
    assert "no video has timed captions" in caplog.text
    record = _record(out)
    assert record["splits"] == {} and not (out / ROOT / "train_list.txt").exists()
    assert all(entry["captions"] and entry["split"] is None
               for entry in record["videos"].values())
