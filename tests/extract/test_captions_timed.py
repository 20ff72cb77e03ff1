"""Timed captions: CSV `start,end` columns, JSON lines `"start"`/`"end"`, and the ActivityNet
Captions JSON as published; round trips of random files in each format, and every hostile
time refused in one line naming the file and the place."""

from __future__ import annotations

import csv
import io
import json
import logging
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from crosskd.errors import UserError
from crosskd.extract.caption_values import MAX_SECONDS
from crosskd.extract.captions import Captions, TimedCaption, read_captions

ANET_LOG = "crosskd.extract.activitynet_captions"
#: a few examples per test and no shrinking to speak of: the files are tiny
FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _read(tmp_path: Path, text: str, name: str = "captions.txt") -> Captions:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return read_captions(path)


def _refused(tmp_path: Path, text: str, *fragments: str) -> str:
    with pytest.raises(UserError) as caught:
        _read(tmp_path, text)
    message = str(caught.value)
    assert "\n" not in message and "captions.txt" in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def _anet(videos: dict) -> str:
    return json.dumps(videos)


def test_csv_rows_with_times_are_timed_and_the_others_not(tmp_path):
    captions = _read(tmp_path, "video,start,end,caption,split\n"
                               "v1,0,2.5,a dog runs,train\n"
                               'v1,2.5,10,"then, it sits",\n'
                               "v2,,,the whole video,test\n")
    assert captions.timed == {"v1": [TimedCaption(0.0, 2.5, "a dog runs"),
                                     TimedCaption(2.5, 10.0, "then, it sits")]}
    assert captions.by_video == {"v2": ["the whole video"]}
    assert captions.splits == {"v1": "train", "v2": "test"}


@pytest.mark.parametrize("names", [("start_time", "end_time"), ("StartTime", "EndTime")])
def test_csv_time_column_aliases(tmp_path, names):
    captions = _read(tmp_path, f"videoid,{names[0]},{names[1]},name\n7,1,2,x\n")
    assert captions.timed == {"7": [TimedCaption(1.0, 2.0, "x")]}


def test_jsonl_times_beside_one_caption(tmp_path):
    captions = _read(tmp_path, json.dumps({"video": "a.mp4", "caption": " x ", "start": 1,
                                           "end": 2.0004}) + "\n"
                     + json.dumps({"video": "a", "caption": "y", "start": None, "end": None})
                     + "\n")
    assert captions.timed == {"a": [TimedCaption(1.0, 2.0, "x")]}
    assert captions.by_video == {"a": ["y"]}


def test_activitynet_as_published(tmp_path, caplog):
    data = {"v_QOlSCBRmfWY": {"duration": 82.73,
                              "timestamps": [[0.83, 19.86], [17.37, 60.81], [56.26, 85.39]],
                              "sentences": ["A young woman dances.", " The girl spins.",
                                            " She ends on the floor."]},
            "v_ehGHCYKzyZ8": {"duration": 61.72, "timestamps": [[0, 7.09]],
                              "sentences": ["Two men stand."]}}
    with caplog.at_level(logging.INFO, logger=ANET_LOG):
        captions = _read(tmp_path, json.dumps(data, indent=1))
    assert captions.timed == {
        "v_QOlSCBRmfWY": [TimedCaption(0.83, 19.86, "A young woman dances."),
                          TimedCaption(17.37, 60.81, "The girl spins."),
                          TimedCaption(56.26, 82.73, "She ends on the floor.")],
        "v_ehGHCYKzyZ8": [TimedCaption(0.0, 7.09, "Two men stand.")]}
    assert captions.by_video == {} and captions.splits == {}
    assert "1 caption end(s) past their video's duration" in caplog.text
    assert "v_QOlSCBRmfWY.timestamps[2]" in caplog.text


def test_activitynet_moments_that_do_not_last_are_left_out_with_a_warning(tmp_path, caplog):
    data = {"v_a": {"duration": 10, "timestamps": [[5, 3], [4, 4], [12, 15], [1, 2]],
                    "sentences": ["reversed", "empty", "after the end", "kept"]}}
    with caplog.at_level(logging.WARNING, logger=ANET_LOG):
        captions = _read(tmp_path, _anet(data))
    assert captions.timed == {"v_a": [TimedCaption(1.0, 2.0, "kept")]}
    warning = caplog.records[-1].getMessage()
    assert caplog.records[-1].levelno == logging.WARNING
    assert "3 caption(s) left out" in warning
    assert "v_a.timestamps[0] [5.0, 3.0]" in warning and "v_a.timestamps[2]" in warning


def test_msrvtt_annotation_json_is_still_told_apart(tmp_path):
    data = {"videos": [], "sentences": [{"video_id": "video0", "caption": "x"}]}
    assert _read(tmp_path, json.dumps(data)).by_video == {"video0": ["x"]}


@pytest.mark.parametrize("text", [
    "video,caption\nv,x\n", '{"video": "v", "captions": ["x"]}\n',
    json.dumps({"sentences": [{"video_id": "v", "caption": "x"}]})])
def test_untimed_files_have_no_timed_captions(tmp_path, text):
    captions = _read(tmp_path, text)
    assert captions.by_video == {"v": ["x"]} and captions.timed == {}


@pytest.mark.parametrize("text", [
    _anet({"v_a": {"duration": 5, "timestamps": [], "sentences": []}}),
    _anet({"v_a": {"duration": 5, "timestamps": [[6, 7]], "sentences": ["late"]}}),
    "video,start,end,caption\n",
])
def test_a_file_with_no_caption_is_refused(tmp_path, text):
    _refused(tmp_path, text, "holds no caption")


@pytest.mark.parametrize(("value", "fragment"), [
    ("nan", "'nan' is not a number of seconds from 0 to 10000000"),
    ("inf", "'inf' is not a number of seconds"),
    ("1e400", "1e400 is out of range"),
    ("-1", "-1 is out of range"),
    ("\u0663", "'\u0663' is not a number of seconds"),
    ("1_0", "'1_0' is not"),
    ("9" * 4000, "'9999999999999999... (4000 characters)' is not"),
    ("12:30", "'12:30' is not"),
    ("10000000.5", "10000000.5 is out of range"),
], ids=["nan", "inf", "1e400", "negative", "arabic-digit", "underscore", "4000-digits",
        "clock", "too-late"])
def test_csv_times_that_are_no_seconds_are_refused(tmp_path, value, fragment):
    _refused(tmp_path, f"video,start,end,caption\nv,0,1,x\nv,{value},20,y\n", "line 3:",
             f"start {fragment}")


@pytest.mark.parametrize(("row", "fragment"), [
    ("v,5,5,x", "start 5.0 is not before end 5.0"),
    ("v,5.0001,5.0004,x", "start 5.0 is not before end 5.0"),  # the same millisecond
    ("v,6,5,x", "start 6.0 is not before end 5.0"),
    ("v,6,,x", "end is empty; give both start and end (seconds) or neither"),
    ("v, ,7,x", "start is empty"),
])
def test_csv_times_that_do_not_make_a_moment_are_refused(tmp_path, row, fragment):
    _refused(tmp_path, f"video,start,end,caption\n{row}\n", "line 2:", fragment)


def test_a_csv_header_with_one_time_column_is_refused(tmp_path):
    _refused(tmp_path, "video,start,caption\nv,1,x\n",
             "the CSV header has a start column but no end column")


@pytest.mark.parametrize(("row", "fragment"), [
    ({"start": True, "end": 2}, "start must be a number of seconds from 0 to 10000000 "
                                "(got true/false)"),
    ({"start": 0, "end": "2"}, "end must be a number of seconds from 0 to 10000000 "
                               "(got a string)"),
    ({"start": float("nan"), "end": 2}, "start nan is out of range"),
    ({"start": 0, "end": float("inf")}, "end inf is out of range"),
    ({"start": 0, "end": 10 ** 4000}, "end 1000000000000000... (4001 characters) is out of"),
    ({"start": -0.5, "end": 2}, "start -0.5 is out of range"),
    ({"start": 3, "end": 3}, "start 3.0 is not before end 3.0"),
    ({"start_time": 3}, "end is missing or null; give both"),
    ({"end_time": 3}, "start is missing or null; give both"),
    ({"start": None, "end": 3}, "start is missing or null"),
    ({"start": 1, "end": 3, "captions": ["a", "b"]}, "times go with one 'caption' per line"),
])
def test_jsonl_times_that_are_no_moment_are_refused(tmp_path, row, fragment):
    line = json.dumps({"video": "v", "caption": "x", **row})
    _refused(tmp_path, '{"video": "v", "caption": "ok"}\n' + line + "\n", "line 2:", fragment)


@pytest.mark.parametrize(("entry", "fragments"), [
    ({"timestamps": [[0, 1], [1, 2]], "sentences": ["x"]},
     ["v_a has 2 timestamps but 1 sentences", "maps each video id to {duration"]),
    ({"timestamps": [[0, 1, 2]], "sentences": ["x"]},
     ["v_a.timestamps[0] must be a pair [start, end] of seconds (got a list of 3)"]),
    ({"timestamps": [5], "sentences": ["x"]}, ["v_a.timestamps[0] must be a pair"]),
    ({"timestamps": [[0, False]], "sentences": ["x"]},
     ["v_a.timestamps[0] end must be a number of seconds", "(got true/false)"]),
    ({"timestamps": [[-1, 2]], "sentences": ["x"]}, ["v_a.timestamps[0] start -1 is out"]),
    ({"timestamps": [[0, 1]], "sentences": [7]},
     ["v_a.sentences[0] must be a string (got a number)"]),
    ({"timestamps": {"0": [0, 1]}, "sentences": ["x"]},
     ["v_a.timestamps must be a list of [start, end] (got an object)"]),
    ({"timestamps": [[0, 1]]}, ["v_a.sentences must be a list of strings (got missing)"]),
    ({"duration": "82.7", "timestamps": [[0, 1]], "sentences": ["x"]},
     ["v_a.duration must be a number of seconds"]),
])
def test_activitynet_mistakes_name_the_video_and_place(tmp_path, entry, fragments):
    _refused(tmp_path, _anet({"v_ok": {"duration": 3, "timestamps": [[0, 1]],
                                       "sentences": ["fine"]}, "v_a": entry}), *fragments)


def test_activitynet_nan_and_huge_numbers_in_the_file_are_refused(tmp_path):
    text = ('{"v_a": {"duration": NaN, "timestamps": [[0, 1e999], [0, ' + "9" * 4000
            + ']], "sentences": ["x", "y"]}}')
    _refused(tmp_path, text, "v_a.duration nan is out of range", "v_a.timestamps[0] end inf",
             "v_a.timestamps[1] end 9999999999999999... (4000 characters)")


# --- round trips and refusals of random files -------------------------------------------

_IDS = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=10).filter(
    lambda vid: vid not in ("sentences", "videos"))
_TEXTS = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
                 max_size=20).map(str.strip)
_MILLIS = st.integers(0, MAX_SECONDS * 1000)
_TIMES = st.tuples(_MILLIS, _MILLIS).filter(lambda pair: pair[0] != pair[1]).map(
    lambda pair: (min(pair) / 1000, max(pair) / 1000))
#: (video, text, times or None) in file order
_ROWS = st.lists(st.tuples(_IDS, _TEXTS, st.none() | _TIMES), min_size=1, max_size=8)


def _expected(rows: list) -> tuple[dict, dict]:
    by_video: dict = {}
    timed: dict = {}
    for video, text, times in rows:
        if times is None:
            by_video.setdefault(video, []).append(text)
        else:
            timed.setdefault(video, []).append(TimedCaption(*times, text))
    return by_video, timed


def _csv_text(rows: list) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["video", "caption", "start", "end"])
    writer.writerows([video, text, *(times or ("", ""))] for video, text, times in rows)
    return out.getvalue()


def _jsonl_text(rows: list) -> str:
    return "".join(json.dumps({"video": video, "caption": text}
                              | ({"start": times[0], "end": times[1]} if times else {})) + "\n"
                   for video, text, times in rows)


def _anet_text(rows: list, indent: int | None = None) -> str:
    videos: dict = {}
    for video, text, times in rows:
        entry = videos.setdefault(video, {"duration": 0, "timestamps": [], "sentences": []})
        entry["duration"] = max(entry["duration"], times[1])
        entry["timestamps"].append(list(times))
        entry["sentences"].append(" " + text)
    return json.dumps(videos, indent=indent)


@FAST
@given(rows=_ROWS, form=st.sampled_from(["csv", "jsonl"]))
def test_csv_and_jsonl_round_trip(tmp_path, rows, form):
    captions = _read(tmp_path, _csv_text(rows) if form == "csv" else _jsonl_text(rows))
    assert (captions.by_video, captions.timed) == _expected(rows)


@FAST
@given(rows=st.lists(st.tuples(_IDS, _TEXTS, _TIMES), min_size=1, max_size=8),
       indent=st.sampled_from([None, 1]))
def test_activitynet_round_trip(tmp_path, rows, indent):
    captions = _read(tmp_path, _anet_text(rows, indent))
    assert captions.by_video == {} and captions.timed == _expected(rows)[1]


_BAD_JSON = (st.sampled_from([True, False, "1", [], {}, 10 ** 4000])
             | st.floats().filter(lambda x: not 0 <= x <= MAX_SECONDS)
             | st.integers(max_value=-1) | st.integers(min_value=MAX_SECONDS + 1))
_BAD_CSV = (st.sampled_from(["nan", "inf", "-1", "1e400", "9" * 4000, "\u0663", "1_0", "0x1"])
            | st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"
                                    + string.digits), min_size=1).filter(str.strip))


def _spoiled(rows: list, at: int, times: tuple) -> list:
    """`rows` with the times of row `at` replaced."""
    return rows[:at] + [(*rows[at][:2], times)] + rows[at + 1:]


_SIMPLE = st.lists(st.tuples(_IDS, st.text(string.ascii_letters, max_size=8), _TIMES),
                   min_size=1, max_size=6)


@FAST
@given(rows=_SIMPLE, data=st.data(), end=st.booleans(), form=st.sampled_from(["jsonl", "anet"]))
def test_a_bad_json_time_anywhere_is_refused_naming_its_place(tmp_path, rows, data, end, form):
    at = data.draw(st.integers(0, len(rows) - 1))
    value, times = data.draw(_BAD_JSON), rows[at][2]
    spoiled = _spoiled(rows, at, (times[0], value) if end else (value, times[1]))
    if form == "jsonl":
        _refused(tmp_path, _jsonl_text(spoiled), f"line {at + 1}: {'end' if end else 'start'}")
        return
    video = rows[at][0]
    index = [row[0] for row in rows[:at]].count(video)
    videos = {video: {"timestamps": [], "sentences": []} for video, _, _ in spoiled}
    for name, text, times in spoiled:
        videos[name]["timestamps"].append(list(times))
        videos[name]["sentences"].append(text)
    _refused(tmp_path, json.dumps(videos),
             f"{video}.timestamps[{index}] {'end' if end else 'start'}")


@FAST
@given(rows=_SIMPLE, data=st.data(), end=st.booleans())
def test_a_bad_csv_time_anywhere_is_refused_naming_its_line(tmp_path, rows, data, end):
    at = data.draw(st.integers(0, len(rows) - 1))
    value, times = data.draw(_BAD_CSV), rows[at][2]
    spoiled = _spoiled(rows, at, (times[0], value) if end else (value, times[1]))
    message = _refused(tmp_path, _csv_text(spoiled), f"line {at + 2}:")
    assert ("end" if end else "start") in message


@FAST
@given(rows=_SIMPLE, data=st.data(), form=st.sampled_from(["csv", "jsonl", "anet"]))
def test_a_moment_that_does_not_last_is_refused_or_left_out(tmp_path, rows, data, form):
    """CSV and JSON lines refuse it (the user fixes their file); ActivityNet leaves it out."""
    at = data.draw(st.integers(0, len(rows) - 1))
    start = rows[at][2][1]  # the old end: the moment is reversed, or empty
    millis = round(start * 1000)
    end = data.draw(st.just(millis) | st.integers(0, millis)) / 1000
    spoiled = _spoiled(rows, at, (start, end))
    if form == "anet":
        kept = spoiled[:at] + spoiled[at + 1:]
        if kept:
            assert _read(tmp_path, _anet_text(spoiled)).timed == _expected(kept)[1]
        else:
            _refused(tmp_path, _anet_text(spoiled), "holds no caption")
        return
    text = _csv_text(spoiled) if form == "csv" else _jsonl_text(spoiled)
    _refused(tmp_path, text, f"line {at + 2 if form == 'csv' else at + 1}:", "is not before end")
