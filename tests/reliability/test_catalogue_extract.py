"""Bad-input catalogue, extract rows (docs/BAD_INPUTS.md E1-E13, E18): caption files, video file
names, command-line numbers, a full disk and sharded reruns of `crosskd extract`.

Each test runs `crosskd extract` in-process on a few tiny synthetic videos and checks the
one-line message and exit status (or, for inputs that are valid, that they are read right).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reliability_support import assert_one_line_error
from small_disk import small_disk  # noqa: F401  (a fixture)


from crosskd.data.pickles import load_small_pickle  # noqa: E402
from crosskd.extract.synthetic_videos import write_collection  # noqa: E402

ROOT = "high-quality/structured-symlinks"
DEMO = ("--experts", "demo", "--text-encoder", "demo")
ID_RULE = "video ids are file names without the suffix"


@pytest.fixture
def videos(tmp_path) -> tuple[Path, Path]:
    """Four one-second synthetic videos and their captions (JSON lines)."""
    folder = tmp_path / "videos"
    return folder, write_collection(folder, 4, seconds=1.0)


def _extract(cli, videos: Path, captions: Path, out: Path, *extra: str):
    return cli("extract", videos, "--captions", captions, "--out", out, *DEMO, *extra)


def _split_ids(out: Path) -> set[str]:
    return {line for name in ("train", "val", "test")
            for line in (out / ROOT / f"{name}_list.txt").read_text().splitlines()}


def test_e1_csv_caption_field_over_4_mib(cli, videos, tmp_path):
    folder, _ = videos
    captions = tmp_path / "captions.csv"
    captions.write_text('video,caption\nvideo0000,fine\nvideo0001,"' + "x" * (5 << 20)
                        + '"\n', encoding="utf-8")
    assert_one_line_error(_extract(cli, folder, captions, tmp_path / "out"),
                          f"captions file {captions} line 3", "longer than 4 MiB",
                          "close the quote, or shorten the caption")


def test_e2_msrvtt_annotation_json_with_wrong_types(cli, videos, tmp_path):
    folder, _ = videos
    captions = tmp_path / "videodatainfo.json"
    captions.write_text(json.dumps({
        "videos": [{"video_id": "video0000", "split": "train"}],
        "sentences": [{"video_id": "video0000", "caption": "a ball"},
                      {"video_id": 1, "caption": "x"}, {"video_id": "video0002", "caption": 7}]
    }, indent=1), encoding="utf-8")
    assert_one_line_error(_extract(cli, folder, captions, tmp_path / "out"),
                          f"captions file {captions}",
                          "sentences[1].video_id must be a string (got a number)",
                          "sentences[2].caption must be a string (got a number)")


def test_e3_captions_file_not_utf8(cli, videos, tmp_path):
    folder, _ = videos
    captions = tmp_path / "captions.csv"
    captions.write_bytes("video,caption\nvideo0000,un café\n".encode("latin-1"))
    assert_one_line_error(_extract(cli, folder, captions, tmp_path / "out"),
                          f"captions file {captions} line 2", "not UTF-8 text (byte 0xe9)",
                          "save it as UTF-8")


def test_e4_video_file_name_with_a_line_break(cli, videos, tmp_path):
    folder, captions = videos
    bad = folder / "two\nlines.mp4"
    bad.write_bytes((folder / "video0000.mp4").read_bytes())
    assert_one_line_error(_extract(cli, folder, captions, tmp_path / "out"),
                          f"video file {str(bad)!r}", "control or invisible character '\\n'",
                          ID_RULE)
    assert not (tmp_path / "out").exists()


def test_e5_video_file_of_dots_only(cli, videos, tmp_path):
    folder, captions = videos
    bad = folder / "...mp4"
    bad.write_bytes((folder / "video0000.mp4").read_bytes())
    assert_one_line_error(_extract(cli, folder, captions, tmp_path / "out"),
                          f"video file {str(bad)!r}", "empty or made of dots only", ID_RULE)


def test_e6_two_videos_whose_ids_differ_only_in_case(cli, videos, tmp_path):
    folder, captions = videos
    (folder / "upper").mkdir()
    (folder / "upper" / "VIDEO0002.mp4").write_bytes((folder / "video0002.mp4").read_bytes())
    assert_one_line_error(_extract(cli, folder, captions, tmp_path / "out"),
                          "two videos have the ids 'VIDEO0002' and 'video0002'", "rename one")


def test_e7_shard_with_a_superscript_digit(cli, videos, tmp_path):
    folder, captions = videos
    result = _extract(cli, folder, captions, tmp_path / "out", "--shard", "²/4")
    assert_one_line_error(result, "argument --shard", "'²' is not a whole number from 0 to 3",
                          "ASCII digits")


def test_e8_full_disk_under_out_names_the_file_and_its_disk(cli, videos, small_disk):  # noqa: F811
    folder, captions = videos
    kib = 16  # fills while the results of the videos are cached
    out = small_disk(kib) / "data"
    line = assert_one_line_error(_extract(cli, folder, captions, out),
                                 "No space left on device", "free disk space or choose "
                                 "another --out")
    named = re.search(r"cannot write (\S+) \(No space left on device; ([0-9.]+) MiB free", line)
    assert named and named.group(1).startswith(str(out)), line
    assert float(named.group(2)) < kib / 1024 + 0.05, "the free space of another disk"


def test_e9_sharded_rerun_after_adding_a_video_rewrites_the_dataset(cli, videos, tmp_path):
    folder, captions = videos
    out = tmp_path / "out"
    for shard in ("0/2", "1/2"):
        assert _extract(cli, folder, captions, out, "--shard", shard).status == 0
    more = write_collection(tmp_path / "more", 5, seconds=1.0)
    (folder / "video0004.mp4").write_bytes((more.parent / "video0004.mp4").read_bytes())
    captions.write_text(more.read_text(encoding="utf-8"), encoding="utf-8")
    for shard in ("0/2", "1/2"):
        assert _extract(cli, folder, captions, out, "--shard", shard).status == 0
    assert _split_ids(out) == {f"video{i:04d}" for i in range(5)}


def test_e10_csv_caption_with_a_quoted_line_break_is_kept_whole(cli, videos, tmp_path):
    folder, _ = videos
    captions = tmp_path / "captions.csv"
    rows = [f'video{i:04d},"a ball, red\nthen ""blue"""' for i in range(4)]
    captions.write_text("video,caption\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert _extract(cli, folder, captions, tmp_path / "out").status == 0
    raw = load_small_pickle(tmp_path / "out" / ROOT / "raw-captions.pkl")
    assert set(raw) == {f"video{i:04d}" for i in range(4)}
    assert raw["video0000"] == [["a", "ball", "red", "then", "blue"]]


@pytest.mark.parametrize(("option", "shown"), [
    (("--text-encoder", "demo:dim=²"), "text encoder 'demo' option dim: '²' is not a whole number"),
    (("--text-encoder", "demo:dim=1000000000"),
     "text encoder 'demo' option dim: 1000000000 is out of range; use a whole number from 1"),
    (("--experts", "clip", "--expert-option", "clip:batch=²"),
     "expert 'clip' option batch: '²' is not a whole number"),
])
def test_e11_numeric_encoder_and_expert_options(cli, videos, tmp_path, option, shown):
    """Option values are parsed to the constructor's types before a model is built."""
    folder, captions = videos
    result = cli("extract", folder, "--captions", captions, "--out", tmp_path / "out",
                 *DEMO, *option)
    assert_one_line_error(result, shown)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.pkl"))


@pytest.mark.parametrize(("content", "shown"), [
    ("a 1 2 3\nb 1 x 3\n", "line 2"), ("2 3\na 1 2 3\nb 1 nan 3\n", "infinite or NaN")])
def test_e12_a_malformed_word_vector_file(cli, videos, tmp_path, content, shown):
    """GloVe or word2vec text: one line naming the file and the line, before any decoding."""
    folder, captions = videos
    vectors = tmp_path / "vectors.txt"
    vectors.write_text(content, encoding="utf-8")
    result = _extract(cli, folder, captions, tmp_path / "out", "--text-encoder",
                      f"word2vec:path={vectors}")
    assert_one_line_error(result, f"word vectors file {vectors}", shown)
    assert not (tmp_path / "out" / ".extract-cache").exists()


def test_e13_the_ocr_expert_without_its_package(cli, videos, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)
    folder, captions = videos
    result = _extract(cli, folder, captions, tmp_path / "out", "--experts", "demo,ocr")
    assert_one_line_error(result, "expert ocr needs rapidocr-onnxruntime", "crosskd[ocr]")
    assert not (tmp_path / "out" / ".extract-cache").exists()


@pytest.mark.parametrize("video_id", ["../x", "a\\b", "sub/video"])
def test_e18_a_recorded_video_id_with_a_path_separator(cli, videos, tmp_path, video_id):
    folder, captions = videos
    out = tmp_path / "out"
    assert _extract(cli, folder, captions, out).status == 0
    record = json.loads((out / "extraction.json").read_text(encoding="utf-8"))
    record["videos"][video_id] = record["videos"].pop("video0001")
    (out / "extraction.json").write_text(json.dumps(record), encoding="utf-8")
    assert_one_line_error(_extract(cli, folder, captions, out),
                          f"extraction.json entry {video_id!r}", "holds a path separator",
                          "to write the dataset afresh")
