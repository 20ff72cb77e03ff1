"""`crosskd extract`'s preflight: every missing model in one message, in seconds, before
anything is decoded, whether the hub's port is closed, its server fails or HF_HUB_OFFLINE is
set; a model in the hub cache loads with the hub unreachable, without retries."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("transformers", reason="pretrained experts need crosskd[extract]")

from crosskd.extract.synthetic_videos import write_collection  # noqa: E402
from tiny_hf import save_tiny_gpt2  # noqa: E402

#: what the default experts and text encoder need, as the message names them.
DEFAULT_OPTIONS = ("--text-encoder transformers:weights=DIR",
                   *(f"--expert-option {name}:weights=DIR"
                     for name in ("clip", "resnet", "videomae", "ast", "whisper")))
#: runs `crosskd extract ARGS` in-process after the imports, printing its status and seconds.
TIMED_RUN = """
import json, sys, time
import transformers
from crosskd.cli import main
started = time.monotonic()
status = main(json.loads(sys.argv[1]))
print(json.dumps({"status": status, "seconds": time.monotonic() - started}))
"""


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("videos")
    return folder, write_collection(folder, 3)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the socket is closed


class _Failing(BaseHTTPRequestHandler):
    """A hub that answers every request with 503 (which huggingface_hub retries)."""

    requests: list[str] = []

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's name)
        self.requests.append(self.path)
        self.send_response(503)
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def failing_hub():
    _Failing.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _run(videos, out: Path, env: dict[str, str], *extra: str) -> tuple[dict, str]:
    folder, captions = videos
    argv = ["extract", str(folder), "--captions", str(captions), "--out", str(out), *extra]
    done = subprocess.run([sys.executable, "-c", TIMED_RUN, json.dumps(argv)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _offline_env(tmp_path: Path, endpoint: str) -> dict[str, str]:
    return {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf"),
            "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"), "HF_HUB_OFFLINE": ""}


@pytest.mark.parametrize("hub", ["closed port", "failing server"])
def test_every_missing_model_is_named_at_once_within_seconds(hub, videos, tmp_path,
                                                             request):
    endpoint = (f"http://127.0.0.1:{_closed_port()}" if hub == "closed port"
                else request.getfixturevalue("failing_hub"))
    out = tmp_path / "data"
    result, stderr = _run(videos, out, _offline_env(tmp_path, endpoint),
                          "--expert-option", "clip:model=some-org/some-clip")
    assert result["status"] == 2 and result["seconds"] < 10, (result, stderr)
    message = stderr[stderr.index("crosskd extract: error:"):]
    assert "6 model(s)" in message and endpoint in message and "HF_HUB_OFFLINE" in message
    assert all(option in message for option in DEFAULT_OPTIONS), message
    assert "model=some-org/some-clip" in message
    assert "Retrying" not in stderr and "Traceback" not in stderr
    assert not (out / ".extract-cache").exists()  # nothing was decoded
    if hub == "failing server":
        assert len(_Failing.requests) == 1  # one probe, no retries


def test_offline_mode_says_so_and_lists_bad_local_paths_too(videos, tmp_path):
    env = {**_offline_env(tmp_path, f"http://127.0.0.1:{_closed_port()}"), "HF_HUB_OFFLINE": "1"}
    result, stderr = _run(videos, tmp_path / "data", env, "--experts", "clip,ast",
                          "--expert-option", f"ast:weights={tmp_path / 'absent'}")
    message = stderr[stderr.index("crosskd extract: error:"):]
    assert result["status"] == 2 and "HF_HUB_OFFLINE is set" in message
    assert "--text-encoder transformers:weights=DIR" in message
    assert "--expert-option clip:weights=DIR" in message
    assert f"{tmp_path / 'absent'} is not a folder written by transformers' save_pretrained" \
        in message


def _cache_model(cache: Path, repo: str, folder: Path) -> str:
    """`folder`'s files as the hub cache keeps a download of `repo` (refs/main, a snapshot)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    shutil.copytree(folder, root / "snapshots" / commit)
    return commit


def test_a_cached_model_loads_with_the_hub_unreachable(videos, tmp_path):
    repo = "crosskd-test/tiny-gpt2"
    commit = _cache_model(tmp_path / "hf" / "hub", repo, save_tiny_gpt2(tmp_path / "tiny"))
    out = tmp_path / "data"
    env = _offline_env(tmp_path, f"http://127.0.0.1:{_closed_port()}")
    result, stderr = _run(videos, out, env, "--experts", "demo", "--text-encoder",
                          f"transformers:model={repo},max_tokens=32")
    assert result["status"] == 0, stderr
    assert "Retrying" not in stderr
    record = json.loads((out / "extraction.json").read_text())
    assert record["text_encoder"]["weights"] == f"hf:{repo}@{commit}"


def test_max_tokens_beyond_the_models_positions_is_refused_before_decoding(videos, tmp_path):
    folder = save_tiny_gpt2(tmp_path / "tiny")  # 32 positions
    out = tmp_path / "data"
    result, stderr = _run(videos, out, {}, "--experts", "demo", "--text-encoder",
                          f"transformers:weights={folder},max_tokens=64")
    assert result["status"] == 2
    assert "max_tokens=64 is more than the model's 32 positions" in stderr
    assert not (out / ".extract-cache").exists()


def test_weight_free_runs_need_no_hub_library():
    code = ("import sys; sys.modules['huggingface_hub'] = None\n"
            "from crosskd.extract.preflight import check_models\n"
            "check_models('demo', {}, 'demo'); print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "ok", done.stderr
