"""`crosskd zoo`: download from a local stand-in for Drive, manifest, load check, eval end to end."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from crosskd.cli import main
from crosskd.commands import zoo as zoo_command
from crosskd.download import features
from crosskd.download.features import TARBALLS, fetch_features
from crosskd.download.http import DownloadError
from crosskd.download.zoo import ZOO, fetch_model, find_entry, format_comparison
from crosskd.errors import UserError

ENTRY = find_entry("msrvtt-cecap")
DRIVE_PATH = f"/uc?export=download&id={ENTRY.drive_id}"


@pytest.fixture
def checkpoint_bytes(tmp_path) -> bytes:
    """A small checkpoint in the original's dict format."""
    path = tmp_path / "served.pth"
    torch.save({"arch": "CENet", "epoch": 3, "monitor_best": 1.0,
                "state_dict": {"layer.weight": torch.ones(2, 2), "layer.bias": torch.zeros(2)}},
               path)
    return path.read_bytes()


@pytest.fixture
def drive(server, monkeypatch):
    monkeypatch.setenv(features.BASE_URL_ENV, server.base_url)
    return server


def test_the_zoo_has_the_eight_published_models():
    assert len({entry.name for entry in ZOO}) == 8
    assert find_entry("ActivityNet-TTCAP").published_t2v() == {
        "R1": 23.8, "R5": 56.9, "R10": 73.2, "R50": 96.2, "MedR": 4}


def test_download_records_sha256_and_checks_the_file_loads(drive, tmp_path, checkpoint_bytes):
    drive.add(DRIVE_PATH, checkpoint_bytes)
    path = fetch_model(ENTRY, tmp_path / "zoo", progress=False)
    manifest = json.loads((path.parent / "manifest.json").read_text())
    assert path.read_bytes() == checkpoint_bytes
    assert manifest["sha256"] == hashlib.sha256(checkpoint_bytes).hexdigest()
    assert manifest["tensors"] == 2 and manifest["config"] == ENTRY.config_name

    requests = len(drive.requests)
    fetch_model(ENTRY, tmp_path / "zoo", progress=False)
    assert len(drive.requests) == requests  # kept, not fetched again


def test_drive_confirm_page_is_followed(drive, tmp_path, checkpoint_bytes):
    page = (f'<html><body><form id="download-form" action="/download" method="get">'
            f'<input type="hidden" name="id" value="{ENTRY.drive_id}">'
            '<input type="hidden" name="export" value="download">'
            '<input type="hidden" name="confirm" value="t"></form></body></html>')
    drive.add(DRIVE_PATH, page.encode(), content_type="text/html; charset=utf-8")
    drive.add(f"/download?id={ENTRY.drive_id}&export=download&confirm=t", checkpoint_bytes)
    path = fetch_model(ENTRY, tmp_path / "zoo", progress=False)
    assert path.read_bytes() == checkpoint_bytes


def test_drive_page_without_download_is_one_clear_line(drive, tmp_path):
    drive.add(DRIVE_PATH, b"<html>Quota exceeded</html>", content_type="text/html")
    with pytest.raises(DownloadError, match="quota") as err:
        fetch_model(ENTRY, tmp_path / "zoo", progress=False)
    assert "\n" not in str(err.value)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_a_file_that_is_not_a_checkpoint_is_deleted(drive, tmp_path):
    drive.add(DRIVE_PATH, b"not a checkpoint at all")
    with pytest.raises(UserError, match="not a loadable checkpoint"):
        fetch_model(ENTRY, tmp_path / "zoo", progress=False)
    assert not (tmp_path / "zoo" / ENTRY.name / "trained_model.pth").exists()


def test_eval_prints_ours_beside_published_with_an_injected_evaluator(
        drive, tmp_path, checkpoint_bytes, monkeypatch, capsys, config_dir):
    drive.add(DRIVE_PATH, checkpoint_bytes)
    seen = {}

    def fake_evaluate(experiment, checkpoint, context):
        seen.update(config=experiment.raw, checkpoint=checkpoint, device=context.device)
        return {"t2v": {"R1": 15.0, "R5": 37.7, "R10": 50.0, "R50": 80.0, "MedR": 9.0},
                "v2t": {}, "protocol": {}}

    monkeypatch.setattr(zoo_command, "evaluate_checkpoint", fake_evaluate)
    status = main(["zoo", "eval", "msrvtt-cecap", "--zoo-dir", str(tmp_path / "zoo"),
                   "--root", str(tmp_path / "data"), "--config-dir", str(config_dir),
                   "--output", str(tmp_path / "eval.json"), "--device", "cpu"])
    out = capsys.readouterr().out
    assert status == 0
    assert seen["device"] == torch.device("cpu")
    assert "R1          14.5     15.0    +0.5" in out
    assert seen["checkpoint"] == tmp_path / "zoo" / "msrvtt-cecap" / "trained_model.pth"
    args = seen["config"]["data_loader"]["args"]
    assert args["data_dir"] == str(tmp_path / "data" / "MSRVTT")
    assert args["split_name"] == "full-test"  # eval_settings applied
    assert json.loads((tmp_path / "eval.json").read_text())["metrics"]["t2v"]["R1"] == 15.0


def test_format_comparison_marks_missing_metrics():
    text = format_comparison(ENTRY, {"t2v": {"R1": 14.0}})
    assert "R1          14.5     14.0    -0.5" in text and "R50         78.5        -       -" in text


def test_zoo_eval_end_to_end_on_served_features_and_checkpoint(
        drive, tmp_path, tarball, conformance, monkeypatch, capsys):
    """Served MSRVTT-mini tarball + original-format checkpoint -> the original's test metrics."""
    source = conformance / "data" / "MSRVTT-mini"
    members = {f"data/MSRVTT/{path.relative_to(source).as_posix()}": path.read_bytes()
               for path in sorted(source.rglob("*")) if path.is_file()}
    body = tarball(members)
    table = {"MSRVTT": TARBALLS["MSRVTT"].__class__(
        "MSRVTT", "MSRVTT", {hashlib.sha1(body).hexdigest(): "current release"})}
    drive.add("/" + table["MSRVTT"].archive_name, body)
    drive.add(DRIVE_PATH, (conformance / "checkpoints" /
                           "msrvtt-mini-cecap_seed0_trained_model.pth").read_bytes())
    fetch_features("MSRVTT", tmp_path / "data", tarballs=table, progress=False)
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / ENTRY.config_name).write_bytes(
        (conformance / "configs" / "msrvtt-mini-cecap.json").read_bytes())

    status = main(["zoo", "eval", "msrvtt-cecap", "--zoo-dir", str(tmp_path / "zoo"),
                   "--root", str(tmp_path / "data"), "--config-dir", str(configs),
                   "--output", str(tmp_path / "eval.json")])
    assert status == 0, capsys.readouterr().err
    ours = json.loads((tmp_path / "eval.json").read_text())["metrics"]["t2v"]
    expected = json.loads((conformance / "expected_test_metrics.json").read_text())["t2v_metrics"]
    for key in ("R1", "R5", "R10", "R50", "MedR", "MeanR"):
        assert ours[key] == pytest.approx(expected[key], abs=1e-4)
    assert "msrvtt-cecap" in capsys.readouterr().out
