"""Bad-input catalogue, timed-caption rows (docs/BAD_INPUTS.md E14-E17): caption times and the
ActivityNet Captions JSON given to `crosskd extract --captions`.

The refusals run `crosskd extract` in-process on two tiny synthetic videos and check the
one-line message and exit status; the published ActivityNet flaws are read, with their log
lines, by the captions reader itself.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from reliability_support import assert_one_line_error

from crosskd.extract.captions import TimedCaption, read_captions  # noqa: E402
from crosskd.extract.synthetic_videos import write_collection  # noqa: E402

DEMO = ("--experts", "demo", "--text-encoder", "demo")


@pytest.fixture
def videos(tmp_path) -> Path:
    """A folder of two one-second synthetic videos."""
    folder = tmp_path / "videos"
    write_collection(folder, 2, seconds=1.0)
    return folder


def _extract(cli, videos: Path, captions: Path, text: str):
    captions.write_text(text, encoding="utf-8")
    return cli("extract", videos, "--captions", captions, "--out", captions.parent / "out",
               *DEMO)


@pytest.mark.parametrize(("name", "text", "shown"), [
    ("c.csv", "video,start,end,caption\nvideo0000,0,1,a ball\nvideo0001,nan,1,x\n",
     "line 3: start 'nan' is not a number of seconds from 0 to 10000000 (ASCII digits"),
    ("c.csv", "video,start,end,caption\nvideo0001,-1,1,x\n", "line 2: start -1 is out of range"),
    ("c.csv", "video,start,end,caption\nvideo0001,0,\u0663,x\n", "line 2: end '\u0663' is not"),
    ("c.csv", f"video,start,end,caption\nvideo0001,0,{'9' * 4000},x\n",
     "line 2: end '9999999999999999... (4000 characters)' is not"),
    ("c.jsonl", '{"video": "video0001", "caption": "x", "start": true, "end": 1}\n',
     "line 1: start must be a number of seconds from 0 to 10000000 (got true/false)"),
    ("c.jsonl", '{"video": "video0001", "caption": "x", "start": 0, "end": NaN}\n',
     "line 1: end nan is out of range"),
    ("c.jsonl", '{"video": "video0001", "caption": "x", "start": 0, "end": 1e400}\n',
     "line 1: end inf is out of range"),
    ("c.jsonl", '{"video": "video0001", "caption": "x", "start": "12", "end": 13}\n',
     "line 1: start must be a number of seconds from 0 to 10000000 (got a string)"),
], ids=["csv-nan", "csv-negative", "csv-arabic-digit", "csv-4000-digits", "jsonl-bool",
        "jsonl-nan", "jsonl-1e400", "jsonl-string"])
def test_e14_a_caption_time_that_is_no_number_of_seconds(cli, videos, tmp_path, name, text,
                                                          shown):
    assert_one_line_error(_extract(cli, videos, tmp_path / name, text),
                          f"captions file {tmp_path / name}", shown)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("name", "text", "shown"), [
    ("c.csv", "video,start,end,caption\nvideo0000,5,5,x\n",
     "line 2: start 5.0 is not before end 5.0 (a timed caption lasts from its start to its end)"),
    ("c.csv", "video,start,end,caption\nvideo0000,6,2,x\n", "line 2: start 6.0 is not before"),
    ("c.csv", "video,start,end,caption\nvideo0000,5.0001,5.0004,x\n",
     "line 2: start 5.0 is not before end 5.0"),
    ("c.csv", "video,start,end,caption\nvideo0000,6,,x\n",
     "line 2: end is empty; give both start and end (seconds) or neither"),
    ("c.csv", "video,start,caption\nvideo0000,6,x\n",
     "the CSV header has a start column but no end column"),
    ("c.jsonl", '{"video": "video0000", "caption": "x", "start": 2}\n',
     "line 1: end is missing or null; give both"),
    ("c.jsonl", '{"video": "video0000", "captions": ["x", "y"], "start": 0, "end": 1}\n',
     "line 1: times go with one 'caption' per line, not a 'captions' list"),
])
def test_e15_a_timed_caption_that_does_not_last_or_has_one_time(cli, videos, tmp_path, name,
                                                                text, shown):
    assert_one_line_error(_extract(cli, videos, tmp_path / name, text),
                          f"captions file {tmp_path / name}", shown)


@pytest.mark.parametrize(("entry", "shown"), [
    ({"duration": 1, "timestamps": [[0, 0.5], [0.5, 1]], "sentences": ["x"]},
     "video0001 has 2 timestamps but 1 sentences (one sentence per timestamp) - the "
     "ActivityNet Captions JSON maps each video id to {duration, timestamps"),
    ({"duration": 1, "timestamps": [[0, 0.5, 1]], "sentences": ["x"]},
     "video0001.timestamps[0] must be a pair [start, end] of seconds (got a list of 3)"),
    ({"duration": 1, "timestamps": [[0, "0.5"]], "sentences": ["x"]},
     "video0001.timestamps[0] end must be a number of seconds from 0 to 10000000 (got a string)"),
    ({"duration": -1, "timestamps": [[0, 0.5]], "sentences": ["x"]},
     "video0001.duration -1 is out of range"),
])
def test_e16_activitynet_captions_of_the_wrong_shape(cli, videos, tmp_path, entry, shown):
    captions = tmp_path / "val_1.json"
    text = json.dumps({"video0000": {"duration": 1, "timestamps": [[0, 1]], "sentences": ["a"]},
                       "video0001": entry})
    assert_one_line_error(_extract(cli, videos, captions, text), f"captions file {captions}",
                          shown)


def test_e17_activitynet_flaws_as_published_are_read(tmp_path, caplog):
    """An end past the duration is taken as it (logged with a count); a reversed moment, or
    one that starts at the video's end, is left out with a warning naming it."""
    captions = tmp_path / "val_1.json"
    captions.write_text(json.dumps({"v_QOlSCBRmfWY": {
        "duration": 82.73, "timestamps": [[0.83, 19.86], [56.26, 85.39], [30.1, 22.4],
                                          [82.73, 84.0]],
        "sentences": ["A young woman dances.", " She ends on the floor.", " Reversed.",
                      " After the end."]}}), encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="crosskd.extract.activitynet_captions"):
        timed = read_captions(captions).timed
    assert timed == {"v_QOlSCBRmfWY": [TimedCaption(0.83, 19.86, "A young woman dances."),
                                       TimedCaption(56.26, 82.73, "She ends on the floor.")]}
    clamped, left_out = (record.getMessage() for record in caplog.records)
    assert "2 caption end(s) past their video's duration taken as the duration" in clamped
    assert "2 caption(s) left out" in left_out
    assert "v_QOlSCBRmfWY.timestamps[2] [30.1, 22.4]" in left_out
