"""Bad-input catalogue, search-serving rows (docs/BAD_INPUTS.md S1-S10): a dataset record or
an index folder someone sent you, and requests from pages you visit.

`crosskd index` copies an own-video dataset's media into the index and `crosskd serve` shows
them over HTTP, so a record naming a file outside the dataset would leak it, markup posing
as a video would run as the server's own page, and a foreign Host header would let any web
page read the index (DNS rebinding). Each row is refused with one line or a 4xx.
"""

from __future__ import annotations

import json
import logging
import os
import shutil

import pytest
import torch

from crosskd.cli import main
from crosskd.config import as_experiment
from crosskd.data.pickles import load_small_pickle
from crosskd.models import build_model
from crosskd.search.media import FOLDER, TABLE
from reliability_support import TEXT_FILE, assert_one_line_error, tiny_config

pytest.importorskip("httpx", reason="the HTTP rows use httpx (pip install 'crosskd[test]')")

MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(512)
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.domain)"/>'


@pytest.fixture
def checkpoint(workspace, tmp_path):
    """A randomly initialised model of the workspace's config, saved as a state_dict."""
    torch.manual_seed(0)
    path = tmp_path / "model.pth"
    torch.save(build_model(as_experiment(workspace.config).model).state_dict(), path)
    return path


def _record(workspace, entry) -> None:
    """An extraction.json giving every video of the dataset `entry`."""
    ids = load_small_pickle(workspace.feature_root / TEXT_FILE)
    record = {"format": 1, "videos": {vid: entry for vid in ids}}
    (workspace.data_dir / "extraction.json").write_text(json.dumps(record), encoding="utf-8")


def _index(cli, workspace, checkpoint, *extra):
    return cli("index", "--checkpoint", checkpoint, "--config", workspace.config_path,
               "--out", workspace.save_dir / "index", *extra)


def _secret(workspace):
    """A file of the user's, outside the dataset folder."""
    path = workspace.data_dir.parent / "private" / "secret.mp4"
    path.parent.mkdir()
    path.write_bytes(MP4)
    return path


def _assert_no_index(workspace):
    assert not (workspace.save_dir / "index").exists()
    assert not (workspace.save_dir / "index.partial").exists()


def test_s1_record_source_outside_the_dataset_is_refused(cli, workspace, checkpoint):
    secret = _secret(workspace)
    _record(workspace, {"source": str(secret)})
    assert_one_line_error(_index(cli, workspace, checkpoint), "extraction.json entry",
                          "source", f"resolves to {secret}", "crosskd index copies no media "
                          "from elsewhere", "--media-root FOLDER")
    _assert_no_index(workspace)


def test_s2_record_keyframe_climbing_out_with_dotdot_is_refused(cli, workspace, checkpoint):
    _secret(workspace)
    _record(workspace, {"keyframe": {"file": "../private/secret.mp4", "time": 0}})
    line = assert_one_line_error(_index(cli, workspace, checkpoint), "keyframe file",
                                 "'../private/secret.mp4'", "outside")
    assert "--media-root" not in line  # keyframes live in the dataset, always
    _assert_no_index(workspace)


def test_s3_record_keyframe_through_a_symlink_is_refused(cli, workspace, checkpoint):
    secret = _secret(workspace)
    (workspace.data_dir / "keyframes").mkdir()
    os.symlink(secret.parent, workspace.data_dir / "keyframes" / "shared")
    _record(workspace, {"keyframe": {"file": "keyframes/shared/secret.mp4", "time": 0}})
    assert_one_line_error(_index(cli, workspace, checkpoint), "keyframe file",
                          f"resolves to {secret}", "outside")
    _assert_no_index(workspace)


def test_s4_own_videos_outside_the_dataset_need_media_root(cli, workspace, checkpoint):
    secret = _secret(workspace)
    _record(workspace, {"source": str(secret)})
    result = _index(cli, workspace, checkpoint, "--media-root", secret.parent)
    assert result.status == 0, result.stderr
    table = json.loads((workspace.save_dir / "index" / TABLE).read_text())
    assert table and all(set(entry) == {"video"} for entry in table.values())


def test_s5_markup_posing_as_a_video_is_left_out(cli, workspace, checkpoint, caplog):
    (workspace.data_dir / "videos").mkdir()
    (workspace.data_dir / "videos" / "clip.mp4").write_bytes(SVG)
    _record(workspace, {"source": "videos/clip.mp4"})
    with caplog.at_level(logging.WARNING):
        result = _index(cli, workspace, checkpoint)
    assert result.status == 0, result.stderr
    assert "left out of the index: their content is not a video or image" in caplog.text
    assert json.loads((workspace.save_dir / "index" / TABLE).read_text()) == {}


@pytest.mark.parametrize("port", ["²", "٣", "８０００"])
def test_s6_serve_port_in_non_ascii_digits(cli, tmp_path, port):
    result = cli("serve", tmp_path, "--port", port)
    assert result.status == 2 and "Traceback" not in result.stderr
    assert "argument --port: port:" in result.stderr and "(ASCII digits 0-9)" in result.stderr


def test_s7_allow_host_with_a_port(cli, tmp_path):
    result = cli("serve", tmp_path, "--allow-host", "search.lan:8000")
    assert result.status == 2
    assert "argument --allow-host" in result.stderr and "'search.lan:8000' is not a host name " \
           "or IP address (no scheme, no port" in result.stderr


# --- HTTP rows: the app `crosskd serve INDEX` runs ----------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory, pristine_dataset):
    """An index of the tiny dataset with one video that has a thumbnail."""
    folder = tmp_path_factory.mktemp("served")
    data = folder / "data"
    shutil.copytree(pristine_dataset, data)
    config = tiny_config(data, folder / "saved")
    (folder / "tiny.json").write_text(json.dumps(config))
    torch.save(build_model(as_experiment(config).model).state_dict(), folder / "model.pth")
    assert main(["index", "--checkpoint", str(folder / "model.pth"), "--config",
                 str(folder / "tiny.json"), "--out", str(folder / "index")]) == 0
    return folder / "index"


def _client(index, host="127.0.0.1"):
    from fastapi.testclient import TestClient

    from crosskd.commands.serve import allowed_hosts
    from crosskd.search import Index
    from crosskd.search.server import create_app

    return TestClient(create_app(Index.load(index), allowed_hosts(host)),
                      base_url="http://127.0.0.1:8000")


def _first_video(index):
    return json.loads((index / "manifest.json").read_text())["video_ids"][0]


def test_s8_a_foreign_host_header_is_refused(served):
    response = _client(served).get("/healthz", headers={"Host": "rebound.evil.example:8000"})
    assert response.status_code == 400 and response.text == "Invalid host header"


def test_s9_k_in_non_ascii_digits(served):
    video = _first_video(served)
    response = _client(served).get("/search", params={"caption": f"{video}:0", "k": "²"})
    assert response.status_code == 400
    assert response.json()["error"] == "k must be a whole number from 1 to 100 in ASCII " \
                                       "digits, not '²'"


def test_s10_media_folder_linked_outside_the_index(served, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(served, index)
    video = _first_video(index)
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "0-thumbnail.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(32))
    (index / TABLE).write_text(json.dumps({video: {"thumbnail": "0-thumbnail.jpg"}}))
    os.symlink(outside, index / FOLDER)
    response = _client(index).get(f"/videos/{video}/thumbnail")
    assert response.status_code == 404
    assert response.json()["error"] == f"no 'thumbnail' file for video {video!r}"
