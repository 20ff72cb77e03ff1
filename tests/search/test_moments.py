"""An index of a segmented dataset answers with moments: each hit's video, segment, start and
end in `crosskd search` (JSON and table), the HTTP API and the Python API; --per-video; one
copy of each source video and one keyframe per segment; updates keep the moments right; a
damaged table of moments, in the dataset or the index, is refused in one line; a whole-video
index answers as before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from cli_runs import search_json
from crosskd.cli import main
from crosskd.errors import UserError
from crosskd.search.index import Index
from crosskd.search.server import create_app
from own_videos import own_index_args
from segmented import FEATURES, NAME, PART_SECONDS, VIDEOS, make_segmented, write_long_videos
from test_own_collection import _assert_same_index

SEGMENTS = {f"{video}@{n:04d}": (video, n * PART_SECONDS, (n + 1) * PART_SECONDS)
            for video, parts in VIDEOS.items() for n in range(len(parts))}
SUMMARY = f"3 videos of {NAME} in 9 segments (8 with captions, 32 captions)"
LOCAL = "http://127.0.0.1"


def _index_args(folder: Path, out: Path, *extra: str) -> list[str]:
    args = own_index_args(folder, out, *extra)
    args[args.index("--media-root") + 1] = str(folder / "videos")
    return args


def _moments(hits: list[dict]) -> list[tuple[str, float, float]]:
    return [(hit["video_id"], hit["start"], hit["end"]) for hit in hits]


def test_an_index_of_segments_keeps_each_one_s_moment_and_each_video_once(
        segmented_collection):
    index = segmented_collection / "index"
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["video_ids"] == sorted(SEGMENTS)
    assert manifest["info"]["counts"] == {"videos": 3, "captioned_videos": 8, "captions": 32,
                                          "segments": 9}
    moments = Index.load(index).moments
    assert [(m.video_id, m.start, m.end) for m in map(moments.moment, range(9))] == \
        [SEGMENTS[s] for s in sorted(SEGMENTS)]
    media = json.loads((index / "media.json").read_text(encoding="utf-8"))
    videos = {video: {media[s]["video"] for s in SEGMENTS if s.startswith(video + "@")}
              for video in VIDEOS}
    assert all(len(names) == 1 for names in videos.values())  # one copy per source video
    assert len({name for names in videos.values() for name in names}) == 3
    assert sorted(p.name for p in (index / "media").glob("*-video.*")) == \
        sorted(name for names in videos.values() for (name,) in [names])
    for video, (name,) in videos.items():
        assert (index / "media" / name).read_bytes() == \
            (segmented_collection / "videos" / f"{video}.mp4").read_bytes()
    keyframes = segmented_collection / "data" / "keyframes"
    assert len({media[s]["thumbnail"] for s in SEGMENTS}) == 9  # one keyframe per segment
    for segment in SEGMENTS:
        assert (index / "media" / media[segment]["thumbnail"]).read_bytes() == \
            (keyframes / f"{segment}.jpg").read_bytes()


def test_hits_carry_their_video_segment_start_and_end(segmented_collection, capsys):
    index = segmented_collection / "index"
    answer = search_json(capsys, index, "a red circle", "-k", "9")
    assert answer["collection"]["summary"] == SUMMARY
    assert answer["query"]["per_video"] is False
    results = answer["results"]
    assert sorted(hit["segment_id"] for hit in results) == sorted(SEGMENTS)
    for hit in results:
        assert list(hit)[:4] == ["video_id", "segment_id", "start", "end"]
        assert (hit["video_id"], hit["start"], hit["end"]) == SEGMENTS[hit["segment_id"]]
    assert next(h for h in results if h["segment_id"] == "lecture2@0003")["captions"] == []
    assert main(["search", str(index), "a red circle", "-k", "9"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"searched {SUMMARY}"
    for line, hit in zip(printed[2:], results):
        video, start, end = SEGMENTS[hit["segment_id"]]
        assert f"  {video}  {int(start) // 60:02d}:{int(start) % 60:02d}-" \
            f"{int(end) // 60:02d}:{int(end) % 60:02d}  [" in line
    python = Index.load(index).search("a red circle", 9)
    assert [(h.item_id, h.moment.video_id, h.moment.start, h.moment.end, h.video_id)
            for h in python] == [(h["segment_id"], *SEGMENTS[h["segment_id"]], h["video_id"])
                                 for h in results]


def test_per_video_keeps_each_video_s_best_segment(segmented_collection, capsys):
    index = segmented_collection / "index"
    full = search_json(capsys, index, "--caption", "lecture2@0001:0", "-k", "9")["results"]
    answer = search_json(capsys, index, "--caption", "lecture2@0001:0", "-k", "3",
                         "--per-video")
    assert answer["query"]["per_video"] is True
    best, seen = [], set()
    for hit in full:
        if hit["video_id"] not in seen:
            seen.add(hit["video_id"])
            best.append(hit)
    assert answer["results"] == best and len(best) == 3
    assert len(search_json(capsys, index, "--caption", "lecture2@0001:0", "-k", "10",
                           "--per-video")["results"]) == 3  # as many as there are videos
    assert main(["search", str(index), "--caption", "lecture2@0001:0", "-k", "3",
                 "--per-video"]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert [row.split()[2] for row in rows] == [hit["video_id"] for hit in best]


def test_video_to_text_ranks_captions_for_a_segment(segmented_collection, capsys):
    index = segmented_collection / "index"
    answer = json.loads(_run(capsys, "search", index, "--video", "lecture0@0001", "-k", "32",
                             "--json"))
    assert answer["video_id"] == "lecture0@0001" and len(answer["results"]) == 32
    stored = Index.load(index).search_captions("lecture0@0001", 32)
    assert [r["caption"] for r in answer["results"]] == [h.item_id for h in stored]
    assert main(["search", str(index), "--video", "lecture0"]) == 2
    assert "no video 'lecture0' in this index; it is cut into segments: name one, e.g. " \
        "'lecture0@0000'" in capsys.readouterr().err


def _run(capsys, *args) -> str:
    assert main([str(a) for a in args]) == 0
    return capsys.readouterr().out


def test_the_api_answers_with_moments_and_serves_the_source_video(segmented_collection):
    index = Index.load(segmented_collection / "index")
    client = TestClient(create_app(index), base_url=LOCAL)
    health = client.get("/healthz").json()
    assert (health["videos"], health["segments"]) == (3, 9)
    assert health["collection"]["summary"] == SUMMARY
    found = client.get("/search", params={"q": "a blue square", "k": 9}).json()["results"]
    assert all(hit["media"] == ["video", "thumbnail"] for hit in found)
    assert _moments(found) == [SEGMENTS[hit["segment_id"]] for hit in found]
    per_video = client.get("/search", params={"q": "a blue square", "k": 9,
                                              "per_video": "true"}).json()
    assert per_video["query"]["per_video"] is True
    assert [hit["video_id"] for hit in per_video["results"]] == \
        list(dict.fromkeys(hit["video_id"] for hit in found))
    assert client.get("/search", params={"q": "x", "per_video": "yes"}).status_code == 400
    source = (segmented_collection / "videos" / "lecture1.mp4").read_bytes()
    ranged = client.get("/videos/lecture1@0001/video", headers={"Range": "bytes=10-99"})
    assert ranged.status_code == 206 and ranged.content == source[10:100]
    assert client.get("/videos/lecture1@0000/video").content == source
    described = client.get("/videos/lecture1@0001").json()
    assert (described["video_id"], described["segment_id"], described["start"],
            described["end"]) == ("lecture1", "lecture1@0001", 2.0, 4.0)


def test_the_report_shows_each_segment_s_video_and_times(segmented_collection, tmp_path):
    assert main(["report", str(segmented_collection / "index"), "--out",
                 str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert f"32 queries over {SUMMARY}" in page
    assert "<td>lecture0 00:02-00:04</td>" in page and "<p>video lecture2 00:04-00:06</p>" in page


def test_a_whole_video_index_writes_and_answers_as_before(own_collection, capsys):
    index = own_collection / "index"
    assert not (index / "moments.json").exists()
    answer = search_json(capsys, index, "a red circle", "-k", "3", "--per-video")
    assert set(answer["query"]) == {"label", "weights"}
    assert all(set(hit) == {"video_id", "score", "contributions", "captions"}
               for hit in answer["results"])
    assert "segments" not in answer["collection"]
    health = TestClient(create_app(Index.load(index)), base_url=LOCAL).get("/healthz").json()
    assert "segments" not in health and health["videos"] == 10


def test_an_update_after_videos_were_added_keeps_the_moments_right(tmp_path, capsys):
    first = {video: parts for video, parts in VIDEOS.items() if video != "lecture1"}
    write_long_videos(tmp_path / "videos", first)
    make_segmented(tmp_path / "videos", tmp_path / "data", tmp_path, first)
    from own_videos import random_model
    random_model(tmp_path / "data" / "config.json", tmp_path / "model.pth")
    assert main(_index_args(tmp_path, tmp_path / "index")) == 0
    write_long_videos(tmp_path / "videos", VIDEOS)
    make_segmented(tmp_path / "videos", tmp_path / "data", tmp_path, VIDEOS)
    capsys.readouterr()
    assert main(_index_args(tmp_path, tmp_path / "index")) == 0
    assert "added:   2 segments ('lecture1@0000', 'lecture1@0001')" in capsys.readouterr().out
    moments = Index.load(tmp_path / "index").moments
    assert [(moments.moment(p).video_id, moments.moment(p).start, moments.moment(p).end)
            for p in range(9)] == [SEGMENTS[s] for s in sorted(SEGMENTS)]
    assert main(_index_args(tmp_path, tmp_path / "fresh")) == 0
    _assert_same_index(tmp_path / "index", tmp_path / "fresh")


def _damaged_moments(index: Path, change) -> str:
    table = json.loads((index / "moments.json").read_text(encoding="utf-8"))
    change(table)
    (index / "moments.json").write_text(json.dumps(table), encoding="utf-8")
    with pytest.raises(UserError) as refused:
        Index.load(index)
    return str(refused.value)


@pytest.mark.parametrize("change, said", [
    (lambda t: t["items"].reverse(), "does not list the manifest's video_ids as its items"),
    (lambda t: t.update(items=t["items"][:-1]), "does not list the manifest's video_ids"),
    (lambda t: t.update(format=True), "is not a table of moments of format 1"),
    (lambda t: t.update(videos=["lecture0", "lecture0", "x"]), "must be distinct video ids"),
    (lambda t: t.update(videos=["lecture0", "../x", "y"]), "must be distinct video ids"),
    (lambda t: t.update(videos=[*t["videos"], "unused"]), "lists a video that holds no item"),
    (lambda t: t["video"].__setitem__(0, 3), "item 'lecture0@0000': video 3 is not a number"),
    (lambda t: t["video"].__setitem__(1, True), "item 'lecture0@0001': video True"),
    (lambda t: t["start"].__setitem__(2, float("nan")), "item 'lecture0@0002': start nan"),
    (lambda t: t["start"].__setitem__(0, -1), "start -1 and end 2.0 must be seconds"),
    (lambda t: t["end"].__setitem__(0, 0.0), "start 0.0 and end 0.0 must be seconds"),
    (lambda t: t["end"].__setitem__(0, 10 ** 400), "must be seconds with 0 <= start < end"),
    (lambda t: t["end"].__setitem__(0, "2"), "start 0.0 and end '2' must be seconds"),
    (lambda t: t.update(start=t["start"][:-1]), "'video', 'start' and 'end' must list 9"),
])
def test_a_damaged_table_of_moments_is_refused_in_one_line(segmented_collection, tmp_path,
                                                           change, said):
    index = tmp_path / "index"
    shutil.copytree(segmented_collection / "index", index)
    message = _damaged_moments(index, change)
    assert said in message and "\n" not in message
    assert message.startswith(f"{index / 'moments.json'}: ")
    assert message.endswith("the index is damaged, rebuild it with crosskd index")


@pytest.mark.parametrize("change, said", [
    (lambda t: t["segments"].pop("lecture1@0000"), "has no entry for segment 'lecture1@0000'"),
    (lambda t: t["segments"]["lecture1@0000"].update(end=-3), "entry 'lecture1@0000': start"),
    (lambda t: t["segments"]["lecture1@0000"].update(video=7), "video 7 is not a video id"),
    (lambda t: t["segments"]["lecture1@0000"].update(video="a\x1b[2J"), "video 'a\\x1b[2J'"),
    (lambda t: t.update(format=2), "is not a format-1 segment table"),
    (lambda t: t.update(segments=[]), "'segments' is not an object of segment ids"),
])
def test_a_damaged_segments_file_stops_the_build_in_one_line(segmented_collection, tmp_path,
                                                             capsys, change, said):
    folder = tmp_path / "copy"
    shutil.copytree(segmented_collection / "data", folder / "data")
    (folder / "model.pth").symlink_to(segmented_collection / "model.pth")
    (folder / "videos").symlink_to(segmented_collection / "videos")
    path = folder / "data" / FEATURES / "segments.json"
    table = json.loads(path.read_text(encoding="utf-8"))
    change(table)
    path.write_text(json.dumps(table), encoding="utf-8")
    capsys.readouterr()
    assert main(_index_args(folder, folder / "index")) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "segments.json" in line and said in line
    assert line.endswith("run crosskd extract again to write it afresh")
    assert not (folder / "index").exists()


def test_moments_ignore_segments_of_the_table_that_are_not_indexed(segmented_collection):
    """--split indexes some segments: their moments only, numbered by their own videos."""
    from crosskd.search.moments import dataset_moments
    moments = dataset_moments(segmented_collection / "data" / FEATURES,
                            ["lecture2@0001", "lecture1@0000"])
    assert moments.videos == ("lecture2", "lecture1")
    assert np.array_equal(moments.video, [0, 1])
    assert dataset_moments(segmented_collection / "data", ["x"]) is None  # no table: whole videos
