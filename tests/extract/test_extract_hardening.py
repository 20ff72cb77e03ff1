"""`crosskd extract` on hostile or awkward input: caption files of every format with quoted
line breaks, huge fields, wrong JSON types and other encodings; video file names that cannot
be ids; sharded reruns after the collection changed; numbers on the command line; a full disk
under --out."""

from __future__ import annotations

import argparse
import builtins
import errno
import io
import json
import os
import re
from pathlib import Path

import pytest

from crosskd.errors import UserError
from crosskd.extract.captions import MAX_FIELD_BYTES, read_captions
from crosskd.extract.video_ids import id_problem

ROOT = "high-quality/structured-symlinks"
DEMO = ["--experts", "demo", "--text-encoder", "demo"]
ID_RULE = "video ids are file names without the suffix"


def _captions(tmp_path: Path, text: str | bytes, name: str = "captions.txt"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return read_captions(path)


def _refused(tmp_path: Path, text: str | bytes, *fragments: str) -> str:
    with pytest.raises(UserError) as caught:
        _captions(tmp_path, text)
    message = str(caught.value)
    assert "\n" not in message and "captions.txt" in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- caption files ---------------------------------------------------------------------------

def test_csv_quoted_line_breaks_and_doubled_quotes_are_kept_whole(tmp_path):
    captions = _captions(tmp_path, 'video,caption,split\r\nv1,"a dog\r\nruns, fast",test\r\n'
                         'v2,"she says ""hi""\nand\nleaves",\n"v3","plain"\n')
    assert captions.by_video == {"v1": ["a dog\r\nruns, fast"],
                                 "v2": ['she says "hi"\nand\nleaves'], "v3": ["plain"]}
    assert captions.splits == {"v1": "test"}


def test_csv_field_over_csvs_default_limit_is_read(tmp_path):
    long = "word " * (200_000 // 5)  # 200 kB, over csv's 128 KiB default
    assert _captions(tmp_path, f'video,caption\nv1,"{long}"\n').by_video["v1"] == [long.strip()]


def test_csv_field_over_the_bound_names_file_and_line(tmp_path):
    huge = "x" * (MAX_FIELD_BYTES + 10)
    _refused(tmp_path, f'video,caption\nv0,ok\nv1,"{huge}"\n', "line 3", "longer than 4 MiB")


@pytest.mark.parametrize(("text", "line", "fragment"), [
    ('video,caption\nv1,"a dog\nv2,a cat\n', "line 2", "not valid CSV"),
    ('video,caption\nv1,ok\nv2,"x"y\n', "line 3", "not valid CSV"),
])
def test_malformed_csv_is_one_line(tmp_path, text, line, fragment):
    _refused(tmp_path, text, line, fragment)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_utf16_and_utf32_with_their_byte_order_mark_are_read(tmp_path, encoding):
    data = "video,caption\nv1,café\n".encode(encoding)  # the codec writes the mark
    assert _captions(tmp_path, data).by_video == {"v1": ["café"]}


@pytest.mark.parametrize("data", ["video,caption\nv1,café\n".encode("latin-1"),
                                  "video,caption\nv1,café\n".encode("utf-16-le"),
                                  b"video,caption\nv1,a\x00b\n"])
def test_text_that_is_not_utf8_is_one_line(tmp_path, data):
    _refused(tmp_path, data, "line 2", "save it as UTF-8")


def test_jsonl_keeps_unicode_line_separators_inside_strings(tmp_path):
    text = "".join(json.dumps({"video": "a", "caption": f"x{sep}y"}, ensure_ascii=False) + "\n"
                   for sep in ("\u2028", "\u2029", "\x85", "\x0c"))
    assert _captions(tmp_path, text).by_video == {"a": ["x\u2028y", "x\u2029y", "x\x85y",
                                                        "x\x0cy"]}


@pytest.mark.parametrize(("row", "fragment"), [
    ({"video": "a", "captions": "one"}, "captions must be a list of strings (got a string)"),
    ({"video": "a", "captions": ["x", 3]}, "captions[1] must be a string (got a number)"),
    ({"video": "a", "caption": None}, "caption must be a string (got null)"),
    ({"video": "a"}, "caption must be a string (got missing)"),
    ({"video": ["a"], "caption": "x"}, "video must be a string (or a whole number) (got a list)"),
    ({"video": True, "caption": "x"}, "got true/false"),
    ({"video": "a", "caption": "x", "split": 3}, "split must be a string (got a number)"),
])
def test_jsonl_wrong_types_name_line_and_field(tmp_path, row, fragment):
    text = '{"video": "ok", "caption": "fine"}\n' + json.dumps(row) + "\n"
    _refused(tmp_path, text, "line 2", fragment)


@pytest.mark.parametrize(("data", "fragments"), [
    ({"sentences": {"video_id": "v"}}, ["sentences must be a list of objects (got an object)"]),
    ({"sentences": [{"video_id": 7, "caption": "x"}]},
     ["sentences[0].video_id must be a string (got a number)"]),
    ({"sentences": [{"video_id": "v0", "caption": "x"}, {"video_id": "v1", "caption": ["x"]}]},
     ["sentences[1].caption must be a string (got a list)"]),
    ({"sentences": [{"video_id": "v0"}]}, ["sentences[0].caption must be a string (got missing)"]),
    ({"sentences": ["v0 a man"]}, ["sentences[0] must be an object (got a string)"]),
    ({"videos": []}, ["sentences must be a list of objects (got missing)"]),
    ({"sentences": [{"video_id": "v0", "caption": "x"}], "videos": {"v0": "train"}},
     ["videos must be a list of objects (got an object)"]),
    ({"sentences": [{"video_id": "v0", "caption": "x"}], "videos": [{"video_id": 0}]},
     ["videos[0].video_id must be a string (got a number)"]),
    ({"sentences": [{"video_id": "v0", "caption": "x"}],
      "videos": [{"video_id": "v0", "split": 1}]}, ["videos[0].split must be a string"]),
    ({"sentences": [{"caption": 1}] * 5}, ["sentences[0].video_id", "sentences[0].caption",
                                           "sentences[1].video_id", "(and 7 more problem(s))"]),
])
def test_msrvtt_annotation_wrong_types_are_one_line(tmp_path, data, fragments):
    _refused(tmp_path, json.dumps(data, indent=1), *fragments)


@pytest.mark.parametrize(("text", "fragment"), [
    (json.dumps([{"video": "a", "caption": "x"}]), "JSON lines"),
    ("[1, 2", "not JSON"),
    ('{"sentences": ' + "[" * 50_000 + "]" * 50_000 + "}", "nested too deeply"),
    ('{"video": "a", "caption": "x", "n": ' + "9" * 5000 + "}\n", "not usable JSON"),
])
def test_unusable_json_is_one_line(tmp_path, text, fragment):
    _refused(tmp_path, text, fragment)


@pytest.mark.parametrize("video", [" v1", "v1 ", "a\nb", "a\rb", "a\x1bb", "a\u2028b",
                                   "a\u202eb", "..", "...", "x" * 201])
def test_caption_ids_follow_the_video_id_rule(tmp_path, video):
    for text in (json.dumps({"video": video, "caption": "x"}) + "\n",
                 json.dumps({"sentences": [{"video_id": video, "caption": "x"}]}),
                 "video,caption\n" + '"' + video + '",x\n'):
        _refused(tmp_path, text, "captions.txt")


def test_video_id_rule_keeps_ordinary_names():
    for ok in ("video12", "a.b", "Ünïcode 名前", "emoji\u200d👩", "x" * 200, ".hidden",
               "1053841541"):
        assert id_problem(ok) is None, ok


# --- video file names -------------------------------------------------------------------------

def _main(*argv: object) -> int:
    from crosskd.cli import main

    return main([str(a) for a in argv])


@pytest.fixture
def videos(tmp_path) -> tuple[Path, Path]:
    """Four tiny synthetic videos and their captions (JSON lines)."""
    from crosskd.extract.synthetic_videos import write_collection

    folder = tmp_path / "videos"
    return folder, write_collection(folder, 4, seconds=1.0)


@pytest.mark.parametrize("name", ["...mp4", "..mp4", "a\nb.mp4", " lead.mp4", "trail .mp4",
                                  "tab\t.mp4", "bidi\u202e4pm.mp4"])
def test_video_file_whose_name_is_no_id_is_refused_naming_it(videos, tmp_path, capsys, name):
    folder, captions = videos
    (folder / name).write_bytes((folder / "video0000.mp4").read_bytes())
    assert _main("extract", folder, "--captions", captions, "--out", tmp_path / "out",
                 *DEMO) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert repr(str(folder / name)) in line and ID_RULE in line
    assert not (tmp_path / "out").exists()


def test_video_file_name_not_utf8_is_refused(videos, tmp_path, capsys):
    folder, captions = videos
    (folder / os.fsdecode(b"bad\xff.mp4")).write_bytes(b"x")
    assert _main("extract", folder, "--captions", captions, "--out", tmp_path / "out",
                 *DEMO) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_list_file_with_ids_equal_but_for_case_is_refused(videos, tmp_path, capsys):
    folder, captions = videos
    (folder / "sub").mkdir()
    (folder / "sub" / "VIDEO0001.mp4").write_bytes((folder / "video0001.mp4").read_bytes())
    listing = tmp_path / "list.txt"
    listing.write_text("videos/video0001.mp4\nvideos/sub/VIDEO0001.mp4\n", encoding="utf-8")
    assert _main("extract", listing, "--captions", captions, "--out", tmp_path / "out",
                 *DEMO) == 2
    err = capsys.readouterr().err
    assert "'video0001' and 'VIDEO0001'" in err and "rename one" in err


# --- sharded reruns ---------------------------------------------------------------------------

def _split_ids(out: Path) -> set[str]:
    return {line for name in ("train", "val", "test")
            for line in (out / ROOT / f"{name}_list.txt").read_text().splitlines()}


def test_sharded_rerun_after_adding_a_video_rewrites_the_dataset(videos, tmp_path):
    from crosskd.extract.synthetic_videos import write_collection

    folder, captions = videos
    out = tmp_path / "out"
    for index in (0, 1):
        assert _main("extract", folder, "--captions", captions, "--out", out, *DEMO,
                     "--shard", f"{index}/2") == 0
    assert _split_ids(out) == {f"video{i:04d}" for i in range(4)}
    more = write_collection(tmp_path / "more", 5, seconds=1.0)
    (folder / "video0004.mp4").write_bytes((tmp_path / "more" / "video0004.mp4").read_bytes())
    captions.write_text(more.read_text(encoding="utf-8"), encoding="utf-8")
    for index in (1, 0):
        assert _main("extract", folder, "--captions", captions, "--out", out, *DEMO,
                     "--shard", f"{index}/2") == 0
    assert "video0004" in _split_ids(out)
    record = json.loads((out / "extraction.json").read_text())
    assert "video0004" in record["videos"]


def test_a_failed_merge_is_retried_by_the_next_shard_run(videos, tmp_path, monkeypatch):
    import crosskd.extract.job as job

    folder, captions = videos
    out = tmp_path / "out"
    assert _main("extract", folder, "--captions", captions, "--out", out, *DEMO,
                 "--shard", "0/2") == 0
    real = job.write_dataset

    def failing(*args, **kwargs):
        raise UserError("cannot write: simulated")

    monkeypatch.setattr(job, "write_dataset", failing)
    assert _main("extract", folder, "--captions", captions, "--out", out, *DEMO,
                 "--shard", "1/2") == 2
    monkeypatch.setattr(job, "write_dataset", real)
    assert _main("extract", folder, "--captions", captions, "--out", out, *DEMO,
                 "--shard", "1/2") == 0
    assert (out / "extraction.json").is_file()


def test_the_record_names_videos_from_the_dataset_folder_and_absolutely(videos, tmp_path,
                                                                          monkeypatch):
    """crosskd index reads the record from the dataset folder, not from where extract ran."""
    monkeypatch.chdir(tmp_path)
    assert _main("extract", "videos", "--captions", "videos/captions.jsonl", "--out", "out",
                 *DEMO) == 0
    record = json.loads((tmp_path / "out" / "extraction.json").read_text())
    for video_id, entry in record["videos"].items():
        assert entry["source"] == f"../videos/{video_id}.mp4"
        assert entry["source_absolute"] == str(tmp_path / "videos" / f"{video_id}.mp4")
        assert entry["keyframe"]["file"] == f"keyframes/{video_id}.jpg"


# --- numbers on the command line ---------------------------------------------------------------

@pytest.mark.parametrize(("flag", "value", "fragment"), [
    ("--shard", "²/4", "not a whole number"), ("--shard", "0/²", "not a whole number"),
    ("--shard", "١/4", "ASCII digits"), ("--shard", "4/4", "out of range"),
    ("--shard", "0/0", "out of range"), ("--shard", "3", "I/N"), ("--shard", "-1/2", "range"),
    ("--workers", "²", "ASCII digits"), ("--workers", "0", "out of range"),
    ("--max-frames", "99999", "out of range"), ("--max-frames", "１", "ASCII digits"),
    ("--seed", "-1", "out of range"), ("--seed", "²", "ASCII digits"),
])
def test_numbers_are_ascii_and_bounded_with_argparses_error(tmp_path, capsys, flag, value,
                                                           fragment):
    captions = tmp_path / "c.csv"
    captions.write_text("video,caption\nv,x\n", encoding="utf-8")
    with pytest.raises(SystemExit) as stop:
        _main("extract", tmp_path, "--captions", captions, "--out", tmp_path / "out",
              f"{flag}={value}")
    assert stop.value.code == 2
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "error" in x]
    assert f"argument {flag}" in line and fragment in line and "Traceback" not in line


@pytest.mark.parametrize(("env", "fragment"), [
    ({"RANK": "²", "WORLD_SIZE": "2"}, "RANK"), ({"RANK": "0", "WORLD_SIZE": "x"}, "WORLD_SIZE"),
    ({"RANK": "2", "WORLD_SIZE": "2"}, "RANK"),
    ({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "²"}, "LOCAL_RANK")])
def test_torchrun_variables_are_checked_before_anything_runs(tmp_path, monkeypatch, capsys, env,
                                                             fragment):
    captions = tmp_path / "c.csv"
    captions.write_text("video,caption\nv,x\n", encoding="utf-8")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert _main("extract", tmp_path, "--captions", captions, "--out", tmp_path / "out",
                 "--device", "cpu") == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert f"environment variable {fragment}" in line and "set by torchrun" in line
    assert not (tmp_path / "out").exists()


def test_shard_type_is_an_argparse_type():
    from crosskd.commands.extract import _shard

    assert _shard("3/5") == (3, 5)
    with pytest.raises(argparse.ArgumentTypeError):
        _shard("٣/5")


# --- a full disk under --out -------------------------------------------------------------------

def _fail_opening(monkeypatch, pattern: str) -> None:
    """Opening a file to write whose name matches `pattern` fails as a full disk does, with
    an OSError that names no file (as numpy's and PIL's writes may)."""
    real_open = builtins.open

    def fake_open(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wax") and re.search(pattern, Path(str(file)).name):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)


@pytest.mark.parametrize(("pattern", "written"), [
    (r"\.npz\.", ".extract-cache/"), (r"\.jpg\.", "keyframes/video"),
    (r"train_list", f"{ROOT}/train_list.txt"),
])
def test_a_full_disk_names_the_file_under_out(videos, tmp_path, capsys, monkeypatch, pattern,
                                              written):
    folder, captions = videos
    out = tmp_path / "out"
    _fail_opening(monkeypatch, pattern)
    assert _main("extract", folder, "--captions", captions, "--out", out, *DEMO) == 2
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if "error:" in x]
    assert "Traceback" not in err
    named = re.search(r"cannot write (\S+) \(No space left on device; [0-9.]+ MiB free", line)
    assert named, line
    assert named.group(1).startswith(str(out)) and written in named.group(1), line
    assert "a file" not in line
