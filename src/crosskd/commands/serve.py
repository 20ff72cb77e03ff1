"""`crosskd serve`: the search page and HTTP API of an index built by `crosskd index`.

GET / (the page), /search?q=TEXT&k=K or /search?caption=VIDEO_ID:INDEX&k=K (the JSON of
`crosskd search --json`), /captions?video=VIDEO_ID&k=K (video -> text), /videos/VIDEO_ID
(metadata; /videos/VIDEO_ID/video and /thumbnail when the index holds them), /healthz.
Bound to 127.0.0.1 unless --host says otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import webbrowser
from pathlib import Path

from crosskd.errors import UserError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `serve` subcommand."""
    parser = subparsers.add_parser("serve", help="serve an index's search page and HTTP API",
                                   description=__doc__)
    add_serve_options(parser)
    parser.add_argument("index", type=Path, help="index folder (crosskd index --out)")
    parser.set_defaults(func=run)


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    """--host, --port and --open (shared with `crosskd demo --serve`)."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (0.0.0.0 exposes the index to the network)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument("--open", action="store_true", help="open the page in a browser")


def serve(index_path: Path, host: str, port: int, open_page: bool = False) -> None:
    """Load the index and serve it until interrupted."""
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise UserError("crosskd serve needs fastapi and uvicorn: pip install 'crosskd[search]'")
    import uvicorn

    from crosskd.search.index import Index
    from crosskd.search.server import create_app
    app = create_app(Index.load(index_path))
    url = f"http://{host}:{port}/"
    print(f"serving {index_path} on {url} (Ctrl-C stops)", flush=True)
    if open_page:
        webbrowser.open(url)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C."""
    serve(args.index, args.host, args.port, args.open)
    return 0
