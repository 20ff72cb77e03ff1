"""`crosskd serve`: the search page and HTTP API of an index built by `crosskd index`.

GET / (the page), /search?q=TEXT&k=K or /search?caption=VIDEO_ID:INDEX&k=K (the JSON of
`crosskd search --json`; &per_video=true keeps each video's best segment of an index of
segments), /captions?video=VIDEO_ID&k=K (video -> text), /videos/VIDEO_ID
(metadata; /videos/VIDEO_ID/video and /thumbnail when the index holds them), /healthz.
Bound to 127.0.0.1 unless --host says otherwise. Requests are answered only when their Host
header is localhost, 127.0.0.1, [::1], the --host address or an --allow-host name, so a web
page you visit cannot read the index by pointing its own name at this machine.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import re
import webbrowser
from pathlib import Path
from typing import Mapping, Sequence

from crosskd.commands.backend_flags import add_search_flags, given_search_options
from crosskd.commands.options import whole_number
from crosskd.untrusted import terminal_safe

log = logging.getLogger(__name__)

#: addresses that listen everywhere: no one name of them to allow
WILDCARD_ADDRESSES = ("", "0.0.0.0", "::")
#: a DNS name (letters, digits, hyphens, dots), optionally "*." for every subdomain
HOST_NAME = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*",
                       re.ASCII)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `serve` subcommand."""
    parser = subparsers.add_parser("serve", help="serve an index's search page and HTTP API",
                                   description=__doc__)
    add_serve_options(parser)
    add_search_flags(parser)
    parser.add_argument("index", type=Path, help="index folder (crosskd index --out)")
    parser.set_defaults(func=run)


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    """--host, --port, --allow-host and --open."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (0.0.0.0 exposes the index to the network)")
    parser.add_argument("--port", type=whole_number("port", 1, 65535), default=8000,
                        help="port to listen on")
    parser.add_argument("--allow-host", "--allow_host", dest="allow_hosts", action="append",
                        type=host_name, default=[], metavar="NAME",
                        help="also answer requests for this host name or address (repeatable; "
                        "'*' answers any, which lets web pages read the index through DNS "
                        "rebinding); default: localhost, 127.0.0.1, [::1] and --host")
    parser.add_argument("--open", action="store_true", help="open the page in a browser")


def host_name(text: str) -> str:
    """argparse type: a host name or IP address as a Host header names it (lower case,
    IPv6 in brackets, no port); '*' for any."""
    name = text.strip().lower()
    if name == "*" or HOST_NAME.fullmatch(name):
        return name
    try:
        address = ipaddress.ip_address(name.removeprefix("[").removesuffix("]"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{terminal_safe(text)!r} is not a host name or IP address (no scheme, no port, "
            "e.g. search.lan or 192.168.1.5)") from None
    return f"[{address.compressed}]" if address.version == 6 else address.compressed


def allowed_hosts(host: str, extra: Sequence[str] = ()) -> list[str]:
    """The Host names the server answers: loopback, the address it listens on unless that
    is every address, and `extra`."""
    from crosskd.search.server import LOOPBACK_HOSTS

    names = [*LOOPBACK_HOSTS, *extra]
    if host not in WILDCARD_ADDRESSES:
        try:
            names.append(host_name(host))
        except argparse.ArgumentTypeError:
            pass  # not something a browser puts in a Host header
    return list(dict.fromkeys(names))


def page_url(host: str, port: int) -> str:
    """The page's address for a browser here (a wildcard listen address is not one)."""
    shown = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host)
    if shown is None:
        shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(index_path: Path, host: str, port: int, open_page: bool = False,
          allow_hosts: Sequence[str] = (), search_options: Mapping[str, int] | None = None
          ) -> None:
    """Load the index (its backend set by `search_options`) and serve it until
    interrupted."""
    import uvicorn

    from crosskd.search.index import Index
    from crosskd.search.server import create_app
    hosts = allowed_hosts(host, allow_hosts)
    app = create_app(Index.load(index_path, **(search_options or {})), hosts)
    url = page_url(host, port)
    print(f"serving {index_path} on {url} for Host {', '.join(hosts)} (--allow-host NAME "
          "for more; Ctrl-C stops)", flush=True)
    if open_page:
        webbrowser.open(url)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C."""
    serve(args.index, args.host, args.port, args.open, args.allow_hosts,
          given_search_options(args))
    return 0
