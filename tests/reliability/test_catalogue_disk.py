"""Bad-input catalogue, disk rows (docs/BAD_INPUTS.md R5-R8): a real full or read-only disk.

Each test mounts a tmpfs of a few hundred KiB (tests/reliability/small_disk.py) and lets a
real write fail on it: torch's zip writer (RuntimeError "unexpected pos", not OSError), the
cache packer, the archive unpacker and the run logs. Each must end in one line naming the
file and the fix, with no partial file left.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import tarfile

import pytest
import torch

from reliability_support import assert_one_line_error
from small_disk import leftovers, small_disk  # noqa: F401  (the fixture)
from crosskd.checkpoint.original import save_original_checkpoint
from crosskd.checkpoint.run_state import LAST_NAME, load_run_state, save_run_state
from crosskd.commands.options import write_json
from crosskd.diskwrites import DiskWriteError
from crosskd.download.archive import safe_unpack
from crosskd.errors import UserError
from crosskd.process import ProcessContext
from crosskd.train.history import EpochLog
from crosskd.train.run_record import recorded_run


def _train(cli, workspace, *extra):
    return cli("train", "--config", workspace.config_path, "--out",
               workspace.save_dir.parent / "out.json", *extra)


def _state(size: int) -> dict:
    return {"model_state": {"w": torch.zeros(size)}, "epoch": 1, "config": {},
            "monitor_best": 0.0}


@pytest.mark.parametrize("background", [False, True])
def test_r5_full_disk_while_training_writes_a_checkpoint(cli, workspace, small_disk, background):
    """2 MiB: config.json and model_best.pth (1.1 MB) fit, checkpoint_last.pth (3.2 MB) not;
    also when the checkpoint is written by the background writer (the GPU default)."""
    disk = small_disk(2048)
    workspace.config["trainer"]["save_dir"] = str(disk / "runs")
    workspace.config["trainer"]["background_checkpoints"] = background
    workspace.write_config()
    line = assert_one_line_error(_train(cli, workspace), LAST_NAME, "No space left on device",
                                 "free disk space", "MiB needed")
    assert str(disk) in line
    assert leftovers(disk) == [], "a partial checkpoint was left behind"
    assert not list(disk.rglob("test_metrics.json"))
    assert not (workspace.save_dir.parent / "out.json").exists()


def test_r5b_full_disk_keeps_the_previous_checkpoint(small_disk):
    disk = small_disk(512)
    path = disk / LAST_NAME
    save_run_state(path, **_state(1000))
    with pytest.raises(DiskWriteError, match="No space left on device") as info:
        save_run_state(path, **_state(200_000))
    assert "previous checkpoint there is intact" in str(info.value)
    assert "unexpected pos" not in str(info.value)
    assert load_run_state(path)["state_dict"]["w"].shape == (1000,)
    assert leftovers(disk) == []


def test_r6_full_disk_while_packing_the_feature_cache(cli, workspace, small_disk):
    cache = small_disk(192)
    line = assert_one_line_error(_train(cli, workspace, "--cache_dir", cache), "cannot pack",
                                 str(cache), "No space left on device", "--cache_dir")
    assert "download" not in line and "corrupt" not in line, "the dataset was blamed"
    assert leftovers(cache) == [], "a half-packed cache entry was left behind"
    assert workspace.run_dirs() == []


def _archive(tmp_path, megabytes: int):
    path = tmp_path / "features.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for i in range(megabytes):
            data = os.urandom(1 << 20)
            info = tarfile.TarInfo(f"MSRVTT/part{i}.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_r7_full_disk_while_unpacking_an_archive(tmp_path, small_disk):
    disk = small_disk(512)
    archive = _archive(tmp_path, 2)
    with pytest.raises(DiskWriteError) as info:
        safe_unpack(archive, disk / "data", progress=False)
    message = str(info.value)
    assert "No space left on device" in message and str(disk / "data") in message
    assert "2.0 MiB needed" in message and str(archive) in message
    assert list((disk / "data").rglob("*")) == [], "a partial archive was left unpacked"


def test_r8_read_only_run_folder(cli, workspace, small_disk):
    disk = small_disk(1024, read_only=True)
    workspace.config["trainer"]["save_dir"] = str(disk / "runs")
    workspace.write_config()
    assert_one_line_error(_train(cli, workspace), str(disk), "Read-only file system",
                          "trainer.save_dir")


def test_r8b_read_only_cache_folder(cli, workspace, small_disk):
    cache = small_disk(1024, read_only=True)
    assert_one_line_error(_train(cli, workspace, "--cache_dir", cache / "packed"),
                          "Read-only file system", "--cache_dir")


def _fill(path) -> None:
    """Write zeros to `path` until the filesystem is full."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(handle, b"\0" * 4096) > 0:
            pass
    except OSError:
        pass
    finally:
        os.close(handle)


def test_r8c_full_disk_while_writing_the_epoch_log(small_disk):
    """metrics.json/csv are replaced atomically: a full disk keeps the previous epoch's."""
    disk = small_disk(64)
    log = EpochLog(disk, tensorboard=False)
    log.append({"epoch": 1, "loss": 1.0})
    before = (disk / "metrics.json").read_text()
    _fill(disk / "filler")
    with pytest.raises(DiskWriteError, match="metrics"):
        log.append({"epoch": 2, "loss": 0.5, "note": "x" * 8192})
    assert (disk / "metrics.json").read_text() == before
    assert leftovers(disk) == []


def test_r8d_synthetic_dataset_onto_a_full_disk(cli, small_disk):
    disk = small_disk(256)
    result = cli("synth", "--dataset", "MSRVTT", "--out", disk / "MSRVTT", "--videos", "40")
    assert_one_line_error(result, str(disk), "No space left on device")
    assert leftovers(disk) == [], "a partial file was left behind"


def test_r8e_metrics_file_and_exported_checkpoint_onto_a_full_disk(small_disk):
    disk = small_disk(64)
    _fill(disk / "filler")
    with pytest.raises(UserError, match="--out") as info:
        write_json(disk / "metrics.json", {"t2v": {"R1": 1.0}, "pad": "x" * 8192})
    assert "No space left on device" in str(info.value)
    with pytest.raises(DiskWriteError, match="No space left on device"):
        save_original_checkpoint(disk / "trained_model.pth", torch.nn.Linear(64, 64), {})
    assert sorted(p.name for p in disk.iterdir()) == ["filler"], "a partial file was left"


def test_r8f_train_log_on_a_full_disk_prints_no_logging_traceback(small_disk, capsys):
    disk = small_disk(64)
    with recorded_run(disk, ProcessContext(), {"argv": ["train"]}) as record:
        record.begin()
        _fill(disk / "filler")
        for i in range(200):
            logging.getLogger("crosskd.test").info("line %d %s", i, "x" * 200)
    err = capsys.readouterr().err
    assert "Logging error" not in err and "Traceback" not in err, err[-2000:]


def test_r8g_a_write_error_that_names_no_file_guesses_no_disk(cli, monkeypatch):
    """An OSError(ENOSPC) without a file name reaching the command line: the message says so,
    and quotes no free space (it used to measure the current folder's disk as "a file")."""
    import crosskd.commands.synth as synth_command

    def full_disk(args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(synth_command, "run", full_disk)
    result = cli("synth", "--dataset", "MSRVTT", "--out", "anywhere")
    assert_one_line_error(result, "a write failed (No space left on device)")
    assert "free" not in result.stderr.split(";")[0] and "a file" not in result.stderr


def test_r8h_a_write_error_naming_its_file_quotes_that_files_disk(cli, monkeypatch, small_disk):
    import crosskd.commands.synth as synth_command

    disk = small_disk(64)
    target = disk / "MSRVTT" / "x.pkl"

    def full_disk(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(synth_command, "run", full_disk)
    result = cli("synth", "--dataset", "MSRVTT", "--out", disk / "MSRVTT")
    assert_one_line_error(result, f"cannot write {target} (No space left on device; ", "MiB free")
