"""A local HTTP server (127.0.0.1, Range support, scripted cuts) and tarball builders for download tests."""

from __future__ import annotations

import http.server
import io
import re
import tarfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from crosskd.shipped import config_dir as shipped_config_dir


@dataclass
class Resource:
    """What the server answers for one path (including its query string)."""

    body: bytes
    content_type: str = "application/octet-stream"
    cut_after: int | None = None  # close the connection after this many body bytes, once
    honour_range: bool = True
    length_header: str | None = None  # sent as Content-Length instead of the true length


@dataclass
class FakeServer:
    """The files served, and the (path, Range header) of every request received."""

    base_url: str
    resources: dict[str, Resource] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def add(self, path: str, body: bytes, **options) -> str:
        """Serve `body` at `path`; return its full URL."""
        self.resources[path] = Resource(body, **options)
        return self.base_url + path


def _handler(server_state: FakeServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            range_header = self.headers.get("Range")
            server_state.requests.append((self.path, range_header))
            resource = server_state.resources.get(self.path)
            if resource is None:
                self.send_error(404)
                return
            body, start = resource.body, 0
            match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
            if match and resource.honour_range:
                start = int(match.group(1))
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", resource.content_type)
            self.send_header("Content-Length", resource.length_header or str(len(body) - start))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            payload = body[start:]
            if resource.cut_after is not None:
                payload = payload[:resource.cut_after]
                resource.cut_after = None
                self.close_connection = True
            self.wfile.write(payload)
            self.wfile.flush()

    return Handler


@pytest.fixture
def server() -> FakeServer:
    """An HTTP server on 127.0.0.1 in a thread, for the duration of one test."""
    state = FakeServer(base_url="")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def make_tarball(entries: dict[str, bytes | tuple[str, str]]) -> bytes:
    """A .tar.gz in memory: name -> file bytes, or name -> ("symlink"|"hardlink", target)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, tuple):
                kind, target = content
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = target
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@pytest.fixture
def tarball() -> object:
    """The tarball builder, as a fixture (test modules here are not importable packages)."""
    return make_tarball


@pytest.fixture
def config_dir() -> Path:
    """The configs shipped with crosskd (the published model-zoo configs)."""
    return shipped_config_dir()
