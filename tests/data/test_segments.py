"""segments.json (crosskd.data.segments): round trip, and every hostile entry refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from crosskd.data.errors import DataError
from crosskd.data.segments import (SEGMENTS_NAME, Segment, read_segments, write_segments)

ITEMS = frozenset({"talk@0000", "talk@0001", "game@0000"})
TABLE = {"talk@0000": Segment("talk", 0.0, 10.0), "talk@0001": Segment("talk", 10.0, 14.5),
         "game@0000": Segment("game", 0.0, 7.25)}


def _write(folder, segments, fmt=1) -> None:
    (folder / SEGMENTS_NAME).write_text(json.dumps({"format": fmt, "segments": segments}),
                                        encoding="utf-8")


def test_a_written_table_reads_back(tmp_path):
    write_segments(tmp_path, TABLE)
    table = read_segments(tmp_path, ITEMS)
    assert table.segments == TABLE and table.path == tmp_path / SEGMENTS_NAME


def test_a_whole_video_dataset_has_no_table(tmp_path):
    assert read_segments(tmp_path, ITEMS) is None


def test_a_split_gets_each_items_video_in_first_seen_order(tmp_path):
    write_segments(tmp_path, TABLE)
    videos = read_segments(tmp_path, ITEMS).videos_of(["game@0000", "talk@0001", "talk@0000"])
    assert videos.video_ids == ("game", "talk")
    np.testing.assert_array_equal(videos.of_item, [0, 1, 1])


def test_a_split_item_without_an_entry_is_named(tmp_path):
    write_segments(tmp_path, {"talk@0000": TABLE["talk@0000"]})
    table = read_segments(tmp_path, ITEMS)
    with pytest.raises(DataError, match=r"segments.json has no entry for segment 'talk@0001'"):
        table.videos_of(["talk@0000", "talk@0001"])


GOOD = {"video": "talk", "start": 0.0, "end": 1.0}


@pytest.mark.parametrize("entry, message", [
    ({**GOOD, "start": -1}, "0 <= start < end"),
    ({**GOOD, "start": 2.0}, "0 <= start < end"),
    ({**GOOD, "end": 0.0}, "0 <= start < end"),
    ({**GOOD, "end": "5"}, "start 0.0 and end '5' must be seconds"),
    ({**GOOD, "start": True}, "start True and end 1.0 must be seconds"),
    ({**GOOD, "start": None}, "start None and end 1.0"),
    ({**GOOD, "end": 10 ** 400}, "must be seconds with 0 <= start < end <= 604800"),
    ({**GOOD, "end": float("nan")}, "must be seconds"),
    ({**GOOD, "end": 8 * 24 * 3600.0}, "<= 604800"),
    ({"video": "talk", "start": 0}, "end None"),
    ({**GOOD, "video": 3}, "video 3 is not a video id"),
    ({**GOOD, "video": ""}, "video '' is not a video id"),
    ({**GOOD, "video": "../x"}, "is not a video id"),
    ([0, 1], "is not an object"),
])
def test_a_bad_entry_is_one_line_naming_file_and_entry(tmp_path, entry, message):
    _write(tmp_path, {"talk@0000": entry})
    with pytest.raises(DataError, match=message) as error:
        read_segments(tmp_path, ITEMS)
    text = str(error.value)
    assert "\n" not in text and f"{tmp_path / SEGMENTS_NAME} entry 'talk@0000'" in text


def test_non_finite_numbers_are_refused(tmp_path):
    (tmp_path / SEGMENTS_NAME).write_text(
        '{"format": 1, "segments": {"talk@0000": {"video": "talk", "start": 0, '
        '"end": Infinity}}}', encoding="utf-8")
    with pytest.raises(DataError, match="start 0 and end inf must be seconds"):
        read_segments(tmp_path, ITEMS)


def test_an_id_that_is_no_item_of_the_dataset_is_refused(tmp_path):
    _write(tmp_path, {"talk@0000": GOOD, "other\x1b[2J@0000": GOOD})
    with pytest.raises(DataError, match=r"entry 'other\\\\x1b\[2J@0000': no item") as error:
        read_segments(tmp_path, ITEMS)
    assert "\x1b" not in str(error.value)


@pytest.mark.parametrize("text, message", [
    ("{", "cannot be read"),
    ("[]", "not a format-1 segment table"),
    ('{"format": 2, "segments": {}}', r"not a format-1 segment table \(format 2\)"),
    ('{"format": 1, "segments": []}', "'segments' is not an object"),
    ('{"format": 1, "segments": {"talk@0000": {}, "talk@0000": {}}}', "appears twice"),
])
def test_a_file_that_is_no_table_is_one_line(tmp_path, text, message):
    (tmp_path / SEGMENTS_NAME).write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message) as error:
        read_segments(tmp_path, ITEMS)
    assert "\n" not in str(error.value) and SEGMENTS_NAME in str(error.value)


def test_bytes_that_are_not_utf8_are_one_line(tmp_path):
    (tmp_path / SEGMENTS_NAME).write_bytes(b"\xff\xfe{")
    with pytest.raises(DataError, match="cannot be read"):
        read_segments(tmp_path, ITEMS)
