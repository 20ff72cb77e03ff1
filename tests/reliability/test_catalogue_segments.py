"""Bad-input catalogue, segment rows (docs/BAD_INPUTS.md G1-G4): `crosskd extract --segment`
with a value it cannot take, into a dataset cut otherwise, without PySceneDetect, and over a
segmented dataset whose extraction.json someone damaged.

Each test runs `crosskd extract` in-process on tiny synthetic videos and checks the one-line
message and exit status, and that nothing was decoded or written where it refuses early.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from reliability_support import assert_one_line_error, tree_digest

from crosskd.extract.synthetic_parts import write_parts_collection  # noqa: E402

DEMO = ("--experts", "demo", "--text-encoder", "demo")


@pytest.fixture
def videos(tmp_path) -> tuple[Path, Path]:
    """Three videos of two 1-second parts and their timed captions."""
    folder = tmp_path / "videos"
    return folder, write_parts_collection(folder, 3, 2, 1.0, size=(32, 24), fps=6)


def _extract(cli, videos: tuple[Path, Path], out: Path, *extra: str):
    folder, captions = videos
    return cli("extract", folder, "--captions", captions, "--out", out, *DEMO, *extra)


@pytest.mark.parametrize(("value", "shown"), [
    ("0", "0 s is out of range; give a window from 0.5 to 86400 seconds, or 'shots'"),
    ("ten", "'ten' is neither 'shots' nor a number of seconds (ASCII digits, e.g. 10 or 2.5)"),
    ("٣", "'٣' is neither 'shots' nor a number of seconds"),
    ("nan", "'nan' is neither 'shots' nor a number of seconds"),
    ("1e9", "'1e9' is neither 'shots' nor a number of seconds"),
    ("100000", "100000 s is out of range"),
])
def test_g1_a_segment_value_that_is_not_seconds_or_shots(cli, videos, tmp_path, value, shown):
    result = _extract(cli, videos, tmp_path / "out", "--segment", value)
    assert_one_line_error(result, "argument --segment:", shown)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("first", "then", "shown"), [
    (("--segment", "1"), ("--segment", "2"),
     "holds a dataset of 1 s windows (--segment 1), and this run asks for 2 s windows "
     "(--segment 2)"),
    (("--segment", "1"), (), "this run asks for whole videos (no --segment)"),
    ((), ("--segment", "shots"),
     "holds a dataset of whole videos (no --segment), and this run asks for shots "
     "(--segment shots)"),
])
def test_g2_extracting_into_a_dataset_cut_otherwise(cli, videos, tmp_path, first, then,
                                                     shown):
    out = tmp_path / "out"
    assert _extract(cli, videos, out, *first).status == 0
    before = tree_digest(out)
    assert_one_line_error(_extract(cli, videos, out, *then), shown,
                          "choose another --out, or extract with the dataset's own "
                          "segmentation to add videos to it")
    assert tree_digest(out) == before


def test_g3_shots_without_pyscenedetect(cli, videos, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "scenedetect", None)
    result = _extract(cli, videos, tmp_path / "out", "--segment", "shots")
    assert_one_line_error(result, "--segment shots needs PySceneDetect and OpenCV",
                          'pip install "crosskd[shots]"')
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("damage", "shown"), [
    (lambda r: r["videos"]["long0000"]["timed_captions"][1].update(end=-3),
     "entry 'long0000' timed_captions[1]: end -3 is out of range"),
    (lambda r: r["videos"]["long0001"]["timed_captions"][0].update(start=5, end=1),
     "entry 'long0001' timed_captions[0]: start 5.0 is not before end 1.0"),
    (lambda r: r["videos"]["long0002"].update(timed_captions=[{"start": 0, "end": 1}]),
     "entry 'long0002' timed_captions[0] is not an object with start, end and a caption"),
    (lambda r: r.pop("segmentation"),
     "a segmented dataset (format 3) without a 'segmentation' object"),
])
def test_g4_a_segmented_record_with_damaged_times(cli, videos, tmp_path, damage, shown):
    out = tmp_path / "out"
    assert _extract(cli, videos, out, "--segment", "1").status == 0
    record = json.loads((out / "extraction.json").read_text(encoding="utf-8"))
    damage(record)
    (out / "extraction.json").write_text(json.dumps(record), encoding="utf-8")
    folder, _ = videos
    result = cli("extract", folder, "--out", out, *DEMO, "--segment", "1")
    assert_one_line_error(result, f"{out / 'extraction.json'}", shown,
                          "to write the dataset afresh")
