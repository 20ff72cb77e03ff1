"""An own collection as a dataset of its own: its layout, name and splits; captions optional;
videos added and removed by extracting again; video files found after the dataset moved;
experts no video has (a silent collection) left out of the generated configs."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest


from crosskd.cli import main  # noqa: E402
from crosskd.config import as_experiment, load_config  # noqa: E402
from crosskd.data.pickles import load_small_pickle  # noqa: E402
from crosskd.data.retrieval import RetrievalData  # noqa: E402
from crosskd.extract.sources import find_source  # noqa: E402
from crosskd.extract.text_encoders import text_encoder_from_record  # noqa: E402
from crosskd.models import build_model  # noqa: E402
from videos import scene_videos  # noqa: E402

ROOT = "high-quality/structured-symlinks"
DEMO = ["--experts", "demo", "--text-encoder", "demo"]
AUDIO = "aggregated_audio_feats/audio-tokens.pickle"


def _extract(videos: Path, out: Path, *extra: str) -> int:
    return main(["extract", str(videos), "--out", str(out), *DEMO, *extra])


def _record(out: Path) -> dict:
    return json.loads((out / "extraction.json").read_text(encoding="utf-8"))


def _splits(out: Path) -> dict[str, str]:
    return {vid: entry["split"] for vid, entry in _record(out)["videos"].items()}


def _train(config: Path, *extra: str) -> int:
    return main(["train", "--config", str(config), "--device", "cpu", "--set",
                 "trainer.epochs=1", *extra])


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> tuple[Path, Path]:
    """12 captioned videos: (folder, captions file)."""
    folder = tmp_path_factory.mktemp("clips")
    return folder, scene_videos(folder, 12)


def test_an_own_dataset_has_its_own_layout_name_and_splits(clips, tmp_path, capsys):
    folder, captions = clips
    out = tmp_path / "holiday"
    assert _extract(folder, out, "--captions", str(captions)) == 0
    printed = capsys.readouterr().out
    record = _record(out)
    assert record["dataset_name"] == "own-videos" and record["name"] == "holiday"
    assert record["counts"]["videos"] == 12 and record["counts"]["captioned_videos"] == 12
    assert sum(record["splits"].values()) == 12
    assert "dataset: " in printed and "'holiday': 12 videos, 12 with captions" in printed
    config = load_config(out / "config.json")
    args = config["data_loader"]["args"]
    assert (args["dataset_name"], args["split_name"]) == ("own-videos", "val")
    assert config["eval_settings"]["data_loader"]["args"]["split_name"] == "test"
    # the text features say what they are: hashed words, 300 wide
    assert config["experts"]["text_feat"] == "hashed-words-300d"
    root = out / ROOT
    assert (root / "aggregated_text_feats/hashed-words-300d.pkl").is_file()
    listed = {split: (root / f"{split}_list.txt").read_text().split()
              for split in ("train", "val", "test")}
    assert {vid: split for split, ids in listed.items() for vid in ids} == _splits(out)
    assert not list(root.glob("*_list_full.txt"))
    assert _extract(folder, out, "--name", "Holiday 2024") == 0
    assert _record(out)["name"] == "Holiday 2024"
    assert _extract(folder, out) == 0  # the name stays
    assert _record(out)["name"] == "Holiday 2024"


def test_a_moved_dataset_indexes_its_train_split_with_every_video(clips, tmp_path, capsys,
                                                                   monkeypatch):
    project = tmp_path / "project"
    shutil.copytree(clips[0], project / "videos")
    monkeypatch.chdir(project)  # VIDEOS and OUT relative to where extract runs
    assert _extract(Path("videos"), Path("data"), "--captions", "videos/captions.jsonl") == 0
    assert _train(project / "data" / "config.json") == 0
    moved = tmp_path / "moved"
    shutil.move(project, moved)  # the dataset and its videos, together
    (run,) = (moved / "data" / "runs" / "config").iterdir()
    capsys.readouterr()
    assert main(["index", "--checkpoint", str(run), "--data", str(moved / "data"), "--split",
                 "train", "--media-root", str(moved / "videos"), "--out",
                 str(tmp_path / "index")]) == 0
    train = sorted(vid for vid, split in _splits(moved / "data").items() if split == "train")
    assert f"indexed {len(train)} videos" in capsys.readouterr().out
    media = json.loads((tmp_path / "index" / "media.json").read_text(encoding="utf-8"))
    assert sorted(vid for vid, files in media.items() if "video" in files) == train
    assert main(["index", "--checkpoint", str(run), "--data", str(moved / "data"), "--split",
                 "full-val", "--out", str(tmp_path / "index2")]) == 2
    assert "use one of train, val, test" in capsys.readouterr().err


def test_added_videos_leave_the_splits_alone_and_gone_ones_stay_unless_pruned(
        tmp_path, capsys, caplog):
    first = tmp_path / "first"
    out = tmp_path / "data"
    assert _extract(first, out, "--captions", str(scene_videos(first, 10))) == 0
    before = _splits(out)
    more = tmp_path / "more"
    capsys.readouterr()
    with caplog.at_level(logging.INFO, logger="crosskd.extract.job"):
        assert _extract(more, out, "--captions", str(scene_videos(more, 5, first=10))) == 0
    assert "5 videos extracted, 10 were cached" in caplog.text
    lines = capsys.readouterr().out.splitlines()
    assert "added:   5 videos ('video0010', 'video0011', 'video0012', ...)" in lines
    assert "kept:    10 videos ('video0000', 'video0001', 'video0002', ...)" in lines
    assert "removed: 0 videos" in lines
    after = _splits(out)
    assert len(after) == 15 and {vid: after[vid] for vid in before} == before
    assert _record(out)["videos"]["video0003"]["captions"]  # from the earlier run
    for vid in ("video0001", "video0012"):
        (first if vid < "video0010" else more).joinpath(f"{vid}.mp4").unlink()
    assert _extract(more, out) == 0
    kept = [line for line in capsys.readouterr().out.splitlines() if line.startswith("kept:")]
    assert kept == ["kept:    15 videos ('video0000', 'video0001', 'video0002', ...); the files "
                    "of 2 videos ('video0001', 'video0012') are gone: kept from the cache "
                    "(--prune removes them)"]
    assert _splits(out) == after
    assert _extract(more, out, "--prune") == 0
    assert "removed: 2 videos ('video0001', 'video0012')" in capsys.readouterr().out
    assert set(_splits(out)) == set(after) - {"video0001", "video0012"}
    audio = load_small_pickle(out / ROOT / AUDIO)
    assert "video0001" not in audio and "video0011" in audio


def test_relative_sources_and_a_moved_dataset_find_their_videos(tmp_path, monkeypatch, caplog):
    project = tmp_path / "project"
    scene_videos(project / "videos", 4)
    monkeypatch.chdir(project)
    assert _extract(Path("videos"), Path("data/mine")) == 0
    entry = _record(project / "data/mine")["videos"]["video0002"]
    assert entry["source"] == "../../videos/video0002.mp4"
    assert entry["source_absolute"] == str(project / "videos/video0002.mp4")
    # the dataset moved alone: the absolute path; dataset and videos moved: the relative one
    shutil.move(project / "data/mine", tmp_path / "mine")
    assert find_source(entry, tmp_path / "mine", "video0002") == project / "videos/video0002.mp4"
    shutil.move(project, tmp_path / "moved")
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "mine", moved / "data/mine")
    assert find_source(entry, moved / "data/mine", "video0002") == (
        moved / "data/mine/../../videos/video0002.mp4").absolute()
    (moved / "videos/video0002.mp4").unlink()
    assert find_source(entry, moved / "data/mine", "video0002") is None


def test_a_silent_collection_trains_without_sound(tmp_path, caplog):
    folder = tmp_path / "silent"
    captions = scene_videos(folder, 12, sound=False)
    out = tmp_path / "data"
    with caplog.at_level(logging.INFO, logger="crosskd.extract.writer"):
        assert _extract(folder, out, "--captions", str(captions)) == 0
    (line,) = [m for m in caplog.messages if "demo-audio" in m]
    assert "expert demo-audio (audio) has nothing for any video" in line
    config = load_config(out / "config.json")
    assert "audio" not in config["experts"]["modalities"]
    assert _train(out / "config.json") == 0
    # a model that has sound (trained elsewhere) still reads the silent videos
    with_sound = config
    with_sound["experts"]["modalities"].append("audio")
    with_sound["data_loader"]["args"]["feat_aggregation"]["audio"] = {
        "model": "audio", "flaky": True, "temporal": "vlad", "type": "embed",
        "binarise": False, "feat_dims": {"embed": 128}}
    with_sound["data_loader"]["args"]["max_tokens"]["audio"] = 4
    with_sound["arch"]["args"]["vlad_clusters"]["audio"] = 2
    experiment = as_experiment(with_sound)
    data = RetrievalData.load(experiment.data)
    batch = next(data.eval.batches(4))
    assert not batch.ind["audio"].any()
    output = build_model(experiment.model).eval()(batch.experts, batch.ind, batch.text)
    assert np.isfinite(output["cross_view_conf_matrix"].detach().numpy()).all()


def test_videos_without_captions_are_in_the_collection_but_no_split(clips, tmp_path):
    folder, captions = clips
    rows = captions.read_text(encoding="utf-8").splitlines()
    some = tmp_path / "some.jsonl"
    some.write_text("\n".join(rows[:9]) + "\n", encoding="utf-8")
    out = tmp_path / "data"
    assert _extract(folder, out, "--captions", str(some)) == 0
    record = _record(out)
    uncaptioned = {vid for vid, entry in record["videos"].items() if not entry["captions"]}
    assert len(uncaptioned) == 3 and record["report"]["without_captions"] == sorted(uncaptioned)
    assert all(record["videos"][vid]["split"] is None for vid in uncaptioned)
    assert record["counts"]["captioned_videos"] == 9 and sum(record["splits"].values()) == 9
    colour = load_small_pickle(out / ROOT / record["experts"][0]["file"])
    assert uncaptioned <= set(colour)
    assert _train(out / "config.json") == 0


def test_a_collection_without_captions_is_ready_for_a_model_trained_elsewhere(
        clips, tmp_path, capsys):
    folder, captions = clips
    trained = tmp_path / "trained"
    assert _extract(folder, trained, "--captions", str(captions)) == 0
    assert _train(trained / "config.json") == 0
    plain = tmp_path / "plain"
    scene_videos(plain, 6, first=20)
    out = tmp_path / "archive"
    capsys.readouterr()
    assert _extract(plain, out) == 0
    printed = capsys.readouterr().out
    assert "'archive': 6 videos, no captions" in printed and "crosskd index" in printed
    record = _record(out)
    assert record["counts"] == {"videos": 6, "captioned_videos": 0, "captions": 0}
    assert record["splits"] == {}
    assert not list((out / ROOT).glob("*_list.txt"))
    # training on it says in one line that it has no captions
    assert _train(out / "config.json") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "collection without captions" in err[0]
    # what the model trained elsewhere reads is there, every video of it, at its widths
    (run,) = (trained / "runs" / "config").iterdir()
    model_config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    assert model_config["experts"]["text_feat"] == load_config(out / "config.json")[
        "experts"]["text_feat"]
    experiment = as_experiment(model_config)
    for modality in experiment.data.modalities:
        (entry,) = [e for e in record["experts"] if e["modality"] == modality]
        features = load_small_pickle(out / ROOT / entry["file"])
        assert set(features) == set(record["videos"])
        assert {np.shape(v)[-1] for v in features.values()} == {
            experiment.data.raw_input_dims[modality]}
    query = text_encoder_from_record(record["text_encoder"]).encode(["a red circle"])[0]
    assert query.shape[1] == experiment.data.text_dim


def test_videos_of_a_dataset_written_in_msrvtts_layout_keep_their_splits(clips, tmp_path):
    """A dataset of an earlier crosskd (extraction.json format 1, MSRVTT's split lists):
    extracting into it again keeps each video's split."""
    folder, captions = clips
    out = tmp_path / "old"
    ids = sorted(path.stem for path in folder.glob("*.mp4"))
    lists = {"train": ids[:4], "val": ids[4:8], "test": ids[8:]}
    (out / ROOT).mkdir(parents=True)
    for split, members in lists.items():
        (out / ROOT / f"{split}_list_full.txt").write_text("\n".join(members) + "\n")
    old = {"format": 1, "dataset_name": "MSRVTT",
           "videos": {vid: {"source": str(folder / f"{vid}.mp4")} for vid in ids}}
    (out / "extraction.json").write_text(json.dumps(old), encoding="utf-8")
    assert _extract(folder, out, "--captions", str(captions)) == 0
    assert _splits(out) == {vid: split for split, members in lists.items() for vid in members}
    assert _record(out)["dataset_name"] == "own-videos"


@pytest.mark.parametrize("name", ["  ", "two\nlines", "bell\a", "x" * 101])
def test_a_name_is_one_printable_line(tmp_path, capsys, name):
    with pytest.raises(SystemExit) as stop:
        _extract(tmp_path, tmp_path / "out", "--name", name)
    assert stop.value.code == 2 and "argument --name" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
