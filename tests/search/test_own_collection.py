"""An own collection is the unit of search: every video indexed (in any split or none,
captioned or not) and named by its own name; videos added, changed and removed later are
folded into the index as a fresh build would have them; a model trained on another collection
of the same experts indexes one without captions; videos that moved are named."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli_runs import search_json
from crosskd.cli import main
from crosskd.search.index import Index
from own_videos import (OWN_NAME, extract, own_index_args, random_model, write_captions,
                        write_clips)


SUMMARY = f"10 videos of {OWN_NAME} (8 with captions, 32 captions)"


def _manifest(index: Path) -> dict:
    return json.loads((index / "manifest.json").read_text(encoding="utf-8"))


def _splits(data: Path) -> dict[str, str | None]:
    record = json.loads((data / "extraction.json").read_text(encoding="utf-8"))
    return {vid: entry["split"] for vid, entry in record["videos"].items()}


def test_every_video_of_the_collection_is_indexed_and_the_collection_named(own_collection,
                                                                          tmp_path, capsys):
    index = own_collection / "index"
    manifest = _manifest(index)
    splits = _splits(own_collection / "data")
    assert manifest["video_ids"] == sorted(splits)  # train, val, test and no split alike
    assert {split for split in splits.values()} == {"train", "val", "test", None}
    assert manifest["info"]["collection"] == OWN_NAME and manifest["info"]["split"] is None
    assert manifest["info"]["counts"] == {"videos": 10, "captioned_videos": 8, "captions": 32}
    media = json.loads((index / "media.json").read_text(encoding="utf-8"))
    assert all("video" in media[vid] for vid in splits)
    answer = search_json(capsys, index, "a red circle", "-k", "10")
    assert answer["collection"]["summary"] == SUMMARY
    assert {hit["video_id"] for hit in answer["results"]} == set(splits)
    uncaptioned = next(hit for hit in answer["results"] if hit["video_id"] == "video0009")
    assert uncaptioned["captions"] == []
    assert main(["search", str(index), "--caption", "video0002:3"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"searched {SUMMARY}\n") and "MSRVTT" not in printed
    # --split still restricts the index to one split
    assert main(own_index_args(own_collection, tmp_path / "test", "--split", "test")) == 0
    test = sorted(vid for vid, split in splits.items() if split == "test")
    assert f"indexed {len(test)} video" in capsys.readouterr().out
    assert _manifest(tmp_path / "test")["video_ids"] == test
    assert Index.load(tmp_path / "test").collection().title() == f"{OWN_NAME}, split test"


def test_the_report_names_the_collection(own_collection, tmp_path):
    assert main(["report", str(own_collection / "index"), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert f"<title>crosskd report: {OWN_NAME} (index)</title>" in page
    assert f"32 queries over {SUMMARY}" in page and "MSRVTT" not in page


def _collection(folder: Path) -> dict[str, list[str]]:
    """10 videos (all captioned) extracted into folder/data, a random model of its config."""
    captions = write_clips(folder / "clips", 0, 10)
    extract(folder / "clips", folder / "data", "--captions",
            str(write_captions(folder / "captions.jsonl", captions)))
    random_model(folder / "data" / "config.json", folder / "model.pth")
    return captions


def _changed(folder: Path, captions: dict[str, list[str]]) -> None:
    """3 videos added, 2 removed and one that shows another scene now, extracted again."""
    captions.update(write_clips(folder / "clips", 10, 3))
    for removed in ("video0001", "video0005"):
        (folder / "clips" / f"{removed}.mp4").unlink()
        del captions[removed]
    write_clips(folder / "clips", 3, 1, look=15)
    extract(folder / "clips", folder / "data", "--prune", "--captions",
            str(write_captions(folder / "captions.jsonl", captions)))


def _files(root: Path) -> dict[str, Path]:
    return {str(path.relative_to(root)): path for path in sorted(root.rglob("*"))
            if path.is_file()}


def _assert_same_index(updated: Path, fresh: Path) -> None:
    """The same files; each the same bytes, but floating-point arrays, which are equal to
    rounding (a video's embedding by BLAS differs in the last bit with its batch)."""
    ours, theirs = _files(updated), _files(fresh)
    assert sorted(ours) == sorted(theirs)
    for name, path in ours.items():
        if path.suffix == ".npy" and np.load(path).dtype.kind == "f":
            np.testing.assert_allclose(np.load(path), np.load(theirs[name]), rtol=0,
                                       atol=1e-6, err_msg=name)
        else:
            assert path.read_bytes() == theirs[name].read_bytes(), name


def _answers(index: Path, capsys) -> list[list[tuple[str, float]]]:
    queries = [["--caption", "video0000:0"], ["--caption", "video0003:1"],
               ["--caption", "video0011:2"], ["a blue square moves down"], ["red circle"]]
    return [[(hit["video_id"], hit["score"]) for hit in
             search_json(capsys, index, *query, "-k", "6")["results"]] for query in queries]


@pytest.mark.parametrize("extra", [[], ["--qbnorm"]], ids=["raw", "qbnorm"])
def test_an_updated_index_equals_a_fresh_build(tmp_path, capsys, extra):
    captions = _collection(tmp_path)
    assert main(own_index_args(tmp_path, tmp_path / "index", *extra)) == 0
    _changed(tmp_path, captions)
    capsys.readouterr()
    assert main(own_index_args(tmp_path, tmp_path / "index", *extra)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"updated {tmp_path / 'index'}: 11 videos of data")
    assert lines[1:5] == ["added:   3 videos ('video0010', 'video0011', 'video0012')",
                          "changed: 1 video ('video0003'): embedded again",
                          "kept:    7 videos ('video0000', 'video0002', 'video0004', ...)",
                          "removed: 2 videos ('video0001', 'video0005')"]
    if extra:
        assert any(line.startswith("QB-Norm: ") and "folded again over every video" in line
                   for line in lines)
    assert main(own_index_args(tmp_path, tmp_path / "fresh", *extra)) == 0
    capsys.readouterr()
    _assert_same_index(tmp_path / "index", tmp_path / "fresh")
    updated, fresh = _answers(tmp_path / "index", capsys), _answers(tmp_path / "fresh", capsys)
    assert [[vid for vid, _ in hits] for hits in updated] == \
        [[vid for vid, _ in hits] for hits in fresh]
    np.testing.assert_allclose([[s for _, s in hits] for hits in updated],
                               [[s for _, s in hits] for hits in fresh], rtol=0, atol=1e-6)
    assert not list(tmp_path.glob("index.*"))  # no partial or previous folder left


def test_an_update_under_other_settings_is_refused_and_rebuild_replaces(tmp_path, capsys):
    _collection(tmp_path)
    index = tmp_path / "index"
    assert main(own_index_args(tmp_path, index)) == 0
    before = _manifest(index)
    capsys.readouterr()
    for extra, said in ((["--dtype", "float16"], "built with --dtype float32, not --dtype "
                         "float16: updating it would change every video; give the same "
                         "settings, --rebuild to build it afresh, or another --out"),
                        (["--qbnorm"], "built with no QB-Norm, not QB-Norm {\"beta\": 20.0, "
                         "\"bank\": \"training captions\"}")):
        assert main(own_index_args(tmp_path, index, *extra)) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert f"{index} was {said}" in line
    random_model(tmp_path / "data" / "config.json", tmp_path / "model.pth", seed=1)
    assert main(own_index_args(tmp_path, index)) == 2
    assert f"{index} was built with another model:" in capsys.readouterr().err
    assert _manifest(index) == before
    (index / "captions" / "owner.npy").write_bytes(b"damaged")
    assert main(own_index_args(tmp_path, index)) == 2
    assert "the index is damaged, rebuild it with crosskd index; --rebuild builds it afresh " \
        "in place" in capsys.readouterr().err
    assert main(own_index_args(tmp_path, index, "--rebuild", "--dtype", "float16")) == 0
    assert capsys.readouterr().out.startswith(f"rebuilt 10 videos of data (40 captions) into "
                                              f"{index} (float16, exact)")
    assert _manifest(index)["dtype"] == "float16"


def test_an_interrupted_update_leaves_the_index_as_it_was(own_collection, tmp_path,
                                                          monkeypatch, capsys):
    index = tmp_path / "index"
    shutil.copytree(own_collection / "index", index)
    before = _files(index)
    from crosskd.search import captions

    def interrupted(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(captions.CaptionStore, "save", interrupted)
    assert main(own_index_args(own_collection, index, "--rebuild")) == 130  # Ctrl-C
    assert sorted(path.name for path in tmp_path.iterdir()) == ["index"]
    assert all(path.read_bytes() == before[name].read_bytes()
               for name, path in _files(index).items()) and _files(index).keys() == before.keys()
    # stopped between moving the old folder aside and the new one in: said, nothing written
    index.rename(tmp_path / "index.previous")
    assert main(own_index_args(own_collection, index)) == 2
    assert f"{tmp_path / 'index.previous'} holds the index an interrupted update of {index} " \
        f"was replacing; move it back to {index}" in capsys.readouterr().err


def test_a_model_trained_elsewhere_indexes_a_collection_without_captions(
        own_collection, tiny_collection, tmp_path, capsys):
    write_clips(tmp_path / "plain", 20, 4)
    archive = tmp_path / "archive"
    extract(tmp_path / "plain", archive)
    capsys.readouterr()
    args = own_index_args(own_collection, tmp_path / "index")
    args[args.index("--data") + 1] = str(archive)
    args[args.index("--media-root") + 1] = str(tmp_path / "plain")
    assert main(args) == 0
    assert "indexed 4 videos of archive (no captions)" in capsys.readouterr().out
    found = search_json(capsys, tmp_path / "index", "a green triangle", "-k", "4")["results"]
    assert sorted(hit["video_id"] for hit in found) == [f"video00{n}" for n in range(20, 24)]
    assert main([*args[:-1], str(tmp_path / "qbnorm"), "--qbnorm"]) == 2
    assert "archive has no captions, so no training captions for a query bank; give bank " \
        "captions with --qbnorm-bank FILE" in capsys.readouterr().err
    # another model's experts and widths: one line naming each difference
    record = json.loads((archive / "extraction.json").read_text(encoding="utf-8"))
    record["experts"] = [e for e in record["experts"] if e["modality"] != "audio"]
    record["experts"][0]["dim"] = 64
    (archive / "extraction.json").write_text(json.dumps(record), encoding="utf-8")
    assert main([*args[:-1], str(tmp_path / "other")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"the model does not read the features of {archive / 'extraction.json'}: expert " \
        "'appearance.demo-colour.0' is 72-d in the model, 64-d in the dataset; it reads " \
        "expert 'audio', which the dataset does not have; index it with a model trained on " \
        "its experts" in line
    # a model of a published dataset reads the folder as what its record says it is
    folder, _, checkpoint, _ = tiny_collection
    assert main(["index", "--checkpoint", str(checkpoint), "--config",
                 str(folder / "config.json"), "--data", str(archive), "--out",
                 str(tmp_path / "msrvtt")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "it reads expert 'scene.densenet161.0', which the dataset does not have" in line
    assert "its caption features are w2v, the dataset's hashed-words-300d" in line


def test_videos_that_moved_are_named_in_one_line_and_found_in_a_media_root(tmp_path, capsys,
                                                                           caplog):
    write_clips(tmp_path / "clips", 0, 4)
    extract(tmp_path / "clips", tmp_path / "data")
    random_model(tmp_path / "data" / "config.json", tmp_path / "model.pth")
    shutil.move(tmp_path / "clips", tmp_path / "moved")
    args = own_index_args(tmp_path, tmp_path / "index")
    del args[args.index("--media-root"):args.index("--media-root") + 2]
    with caplog.at_level(logging.WARNING, logger="crosskd.search.media_sources"):
        assert main(args) == 0
    (line,) = caplog.messages
    assert line == (f"4 of 4 videos cannot be found where {tmp_path / 'data/extraction.json'} "
                    "records them ('video0000', 'video0001', 'video0002', ...): the index "
                    "shows them without their video, by thumbnail only; if they moved, give "
                    "the folder that holds them now with --media-root FOLDER (found there by "
                    "file name)")
    media = json.loads((tmp_path / "index" / "media.json").read_text(encoding="utf-8"))
    assert all(set(files) == {"thumbnail"} for files in media.values()) and len(media) == 4
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="crosskd.search.media_sources"):
        assert main([*args, "--rebuild", "--media-root", str(tmp_path / "moved")]) == 0
    assert caplog.messages == []
    media = json.loads((tmp_path / "index" / "media.json").read_text(encoding="utf-8"))
    assert all(set(files) == {"video", "thumbnail"} for files in media.values())
