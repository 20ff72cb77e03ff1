"""Caption files in three formats, user splits, and seeded split draws."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from crosskd.errors import UserError
from crosskd.extract.captions import read_captions
from crosskd.extract.splits import SPLITS, assign_splits


def test_webvid_csv(tmp_path):
    path = tmp_path / "results_2M_val.csv"
    path.write_text('videoid,contentUrl,duration,page_dir,name\n'
                    '1053841541,http://x/1.mp4,PT00H00M11S,006,"Flag, waving"\n'
                    '1053841541,http://x/1.mp4,PT00H00M11S,006,A flag again\n'
                    '77,http://x/2.mp4,PT1S,006,Sea\n', encoding="utf-8")
    captions = read_captions(path)
    assert captions.by_video == {"1053841541": ["Flag, waving", "A flag again"], "77": ["Sea"]}
    assert captions.splits == {}


def test_jsonl_with_caption_lists_and_splits(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"video": "clips/a.mp4", "captions": ["one", "two"],
                                "split": "test"}) + "\n\n" +
                    json.dumps({"video_id": "b", "caption": "three"}) + "\n", encoding="utf-8")
    captions = read_captions(path)
    assert captions.by_video == {"a": ["one", "two"], "b": ["three"]}
    assert captions.splits == {"a": "test"}


def test_msrvtt_annotation_json(tmp_path):
    path = tmp_path / "train_val_videodatainfo.json"
    path.write_text(json.dumps({
        "videos": [{"video_id": "video0", "split": "train"},
                   {"video_id": "video1", "split": "validate"}],
        "sentences": [{"video_id": "video0", "caption": "a man sings", "sen_id": 0},
                      {"video_id": "video1", "caption": "cars race", "sen_id": 1},
                      {"video_id": "video0", "caption": "singing", "sen_id": 2}]}))
    captions = read_captions(path)
    assert captions.by_video == {"video0": ["a man sings", "singing"], "video1": ["cars race"]}
    assert captions.splits == {"video0": "train", "video1": "val"}


@pytest.mark.parametrize(("text", "message"), [
    ("id,words\n1,x\n", "CSV header needs"),
    ('{"video": "a", "caption": "x"}\nnot json\n', "line 2: not JSON"),
    ('{"video": "a", "caption": "x", "split": "dev"}\n', "split 'dev'"),
    ("video,caption\n", "holds no caption"),
])
def test_bad_caption_files_are_one_line(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        read_captions(path)


@settings(max_examples=40, deadline=None)
@given(count=st.integers(3, 60), seed=st.integers(0, 5), given_test=st.integers(0, 3))
def test_split_draw_covers_every_video_once(count, seed, given_test):
    ids = [f"v{i}" for i in range(count)]
    fixed = {vid: "test" for vid in ids[:given_test]}
    splits = assign_splits(ids, fixed, seed)
    assert sorted(sum(splits.values(), [])) == sorted(ids)
    assert all(splits[name] for name in SPLITS)
    assert assign_splits(ids, fixed, seed) == splits
    if count >= 10:
        assert set(ids[:given_test]) <= set(splits["test"])
