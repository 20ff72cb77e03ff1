"""The HTTP API and page of `crosskd serve`: FastAPI over one loaded Index.

Every request is checked before it reaches the index: its Host must be one the server was
told to answer (loopback names by default, so a web page cannot read the index through DNS
rebinding), query text must be UTF-8, non-empty and at most MAX_QUERY_CHARS long, numbers
(k, caption numbers, byte ranges) ASCII digits, k between 1 and MAX_K, qbnorm 0 or 1,
per_video true or false, video ids known to the index. Files are served only from the package's own page files and the
index's media table, never from a path built out of the request, and media only with the
type their content shows (crosskd.search.media). Captions are sent as JSON strings; the page
inserts them as text, never as HTML. A mistake of the client gets a 4xx and a message; a
fault of the server a 5xx whose body names no file and gives no advice meant for the
server's user, who finds the detail in the server's log.
"""

from __future__ import annotations

import logging
import re
from importlib import resources
from typing import Any, Sequence
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from crosskd.errors import UserError
from crosskd.search.answers import answer, caption_answer, parse_caption_ref
from crosskd.search.captions import UnknownCaption
from crosskd.search.index import Index, UnknownVideo
from crosskd.search.media import KINDS, MediaTable
from crosskd.search.query import Query, moment_json
from crosskd.search.text_side import MAX_QUERY_CHARS
from crosskd.untrusted import ascii_int

log = logging.getLogger(__name__)

#: the most results one request may ask for
MAX_K = 100
#: the Host names answered unless more are allowed (what a browser on this machine sends)
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
#: a byte range the media files answer: bytes=START-END[, ...] in ASCII digits
BYTE_RANGES = re.compile(r"bytes=[0-9]*-[0-9]*(?:[ \t]*,[ \t]*[0-9]*-[0-9]*)*", re.ASCII)
NO_FREE_TEXT = ("this index answers no free-text queries (free_text is false in /healthz); "
                "ask with caption=VIDEO_ID:INDEX")
SERVER_FAULT = "the server could not answer this request; its log says why"
#: the page's files: name -> media type
PAGE_FILES = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff",
                    "Content-Security-Policy": "default-src 'self'; img-src 'self'; "
                    "media-src 'self'; object-src 'none'; base-uri 'none'"}


class BadRequest(Exception):
    """A request the API refuses, with its status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _parameters(request: Request) -> dict[str, str]:
    """The query string's parameters, decoded strictly as UTF-8 (Starlette would replace
    undecodable bytes, which would search for something nobody typed)."""
    raw = request.scope.get("query_string", b"").decode("latin-1")
    try:
        return dict(parse_qsl(raw, keep_blank_values=True, encoding="utf-8", errors="strict"))
    except UnicodeDecodeError:
        raise BadRequest(400, "the query string is not valid UTF-8") from None


def _k(parameters: dict[str, str]) -> int:
    text = parameters.get("k", "10")
    try:
        return ascii_int(text, "k", 1, MAX_K)
    except ValueError:
        raise BadRequest(400, f"k must be a whole number from 1 to {MAX_K} in ASCII digits, "
                         f"not {text[:20]!r}") from None


def _qbnorm(parameters: dict[str, str]) -> bool:
    """`qbnorm=1` (the default: QB-Norm where the index has a bank) or `qbnorm=0` (raw)."""
    text = parameters.get("qbnorm", "1")
    if text not in ("0", "1"):
        raise BadRequest(400, f"qbnorm must be 0 or 1, not {text[:20]!r}")
    return text == "1"


def _per_video(parameters: dict[str, str]) -> bool:
    """`per_video=true` (each video's best segment only) or `false` (the default; also 1/0)."""
    text = parameters.get("per_video", "false")
    if text not in ("true", "false", "1", "0"):
        raise BadRequest(400, f"per_video must be true or false, not {text[:20]!r}")
    return text in ("true", "1")


def _video_id(index: Index, video_id: str) -> str:
    if "/" in video_id or "\\" in video_id or ".." in video_id or not video_id.isprintable():
        raise BadRequest(400, "a video id holds no slashes, '..' or control characters")
    if video_id not in index.positions:
        raise BadRequest(404, f"no video {video_id[:80]!r} in this index")
    return video_id


def _query_text(parameters: dict[str, str]) -> tuple[str | None, str | None]:
    text, caption = parameters.get("q"), parameters.get("caption")
    for name, value in (("q", text), ("caption", caption)):
        if value is None:
            continue
        if not value.strip():
            raise BadRequest(400, f"{name} is empty")
        if len(value) > MAX_QUERY_CHARS:
            raise BadRequest(413 if len(value) > 4 * MAX_QUERY_CHARS else 400,
                             f"{name} is {len(value)} characters; at most {MAX_QUERY_CHARS}")
    if (text is None) == (caption is None):
        raise BadRequest(400, "give one of q=TEXT or caption=VIDEO_ID:INDEX")
    return text, caption


def _query(index: Index, text: str | None, caption: str | None) -> Query:
    """The query a request names; a free-text one only where the index can embed text."""
    if caption is not None:
        try:
            video_id, slot = parse_caption_ref(caption)
        except UserError as err:
            raise BadRequest(400, str(err)) from None
        return index.caption(video_id, slot)
    if index.text_side is None or not index.text_side.free_text:
        raise BadRequest(400, NO_FREE_TEXT)
    return index.query(text)


def _check_range(request: Request) -> None:
    """Refuse a Range header that is not byte ranges in ASCII digits (Starlette's own
    parsing would take `1_0` for 10)."""
    ranges = request.headers.get("range")
    if ranges is not None and not BYTE_RANGES.fullmatch(ranges.strip()):
        raise BadRequest(400, "the Range header must be bytes=START-END (ASCII digits)")


def _bank_summary(index: Index) -> dict[str, Any] | None:
    """QB-Norm's settings for /healthz (None: the index ranks by raw scores only)."""
    if index.querybank is None:
        return None
    return {"beta": index.querybank.beta, "bank_size": index.querybank.size,
            "active_videos": int(index.querybank.active.sum())}


def create_app(index: Index, allowed_hosts: Sequence[str] = LOOPBACK_HOSTS) -> FastAPI:
    """The app serving `index` to requests whose Host is one of `allowed_hosts` (names or
    addresses, IPv6 in brackets; "*" answers any) - see the module docstring for the rest."""
    app = FastAPI(title="crosskd search", docs_url=None, redoc_url=None, openapi_url=None)
    media = MediaTable(index.root)
    collection = index.collection().as_json()
    page = resources.files("crosskd.search") / "static"
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts),
                       www_redirect=False)

    @app.exception_handler(BadRequest)
    def _bad(_: Request, err: BadRequest) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=err.status)

    @app.exception_handler(UserError)
    def _refused(request: Request, err: UserError) -> JSONResponse:
        if isinstance(err, (UnknownVideo, UnknownCaption)):
            return JSONResponse({"error": str(err)}, status_code=404)
        log.error("%s %s: %s", request.method, request.url.path, err)
        return JSONResponse({"error": SERVER_FAULT}, status_code=503)

    @app.exception_handler(Exception)
    def _fault(_: Request, err: Exception) -> JSONResponse:
        """A bug: Starlette logs the traceback; the answer says nothing of it."""
        return JSONResponse({"error": SERVER_FAULT}, status_code=500, headers=SECURITY_HEADERS)

    @app.exception_handler(HTTPException)
    def _http(request: Request, err: HTTPException) -> JSONResponse:
        return JSONResponse({"error": f"{err.detail}: {request.url.path[:200]}"},
                            status_code=err.status_code)

    @app.middleware("http")
    async def _headers(request: Request, call_next) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/", response_class=HTMLResponse)
    def home() -> HTMLResponse:
        return HTMLResponse((page / "index.html").read_text(encoding="utf-8"))

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in PAGE_FILES:
            raise BadRequest(404, "no such page file")
        return Response((page / name).read_bytes(), media_type=PAGE_FILES[name])

    @app.get("/healthz")
    def health() -> dict[str, Any]:
        text_side = index.text_side
        return {"status": "ok", "videos": collection["videos"], "captions": len(index.captions),
                **({"segments": len(index)} if index.moments is not None else {}),
                "backend": index.backend, "dtype": index.dtype,
                "free_text": bool(text_side and text_side.free_text),
                "dataset": index.info.get("dataset"), "split": index.info.get("split"),
                "collection": collection,
                "modalities": list(index.modalities), "qbnorm": _bank_summary(index)}

    @app.get("/search")
    def search(request: Request) -> dict[str, Any]:
        parameters = _parameters(request)
        k, qbnorm, per_video = _k(parameters), _qbnorm(parameters), _per_video(parameters)
        result = answer(index, _query(index, *_query_text(parameters)), k, qbnorm, per_video)
        for hit in result["results"]:
            hit["media"] = media.kinds(hit.get("segment_id", hit["video_id"]))
        return result

    @app.get("/captions")
    def captions(request: Request) -> dict[str, Any]:
        parameters = _parameters(request)
        video_id = _video_id(index, parameters.get("video", ""))
        return caption_answer(index, video_id, _k(parameters))

    @app.get("/videos/{video_path:path}")
    def video(video_path: str, request: Request) -> Any:
        video_id, _, kind = video_path.partition("/")
        if "/" in kind or ".." in video_path:
            raise BadRequest(400, "a video id holds no slashes, '..' or control characters")
        video_id = _video_id(index, video_id)
        if kind:
            found = media.find(video_id, kind) if kind in KINDS else None
            if found is None:
                raise BadRequest(404, f"no {kind[:20]!r} file for video {video_id!r}")
            _check_range(request)
            path, media_type = found
            return FileResponse(path, media_type=media_type.mime)
        position = index.positions[video_id]
        moment = index.moments.moment(position) if index.moments is not None else None
        described = {"video_id": moment.video_id if moment else video_id,
                     **moment_json(video_id, moment),
                     "captions": index.captions.texts.get(video_id, []),
                     "experts": {m: bool(a) for m, a in
                                 zip(index.modalities, index.availability[position])},
                     "media": media.kinds(video_id)}
        read = index.captions.read.get(video_id)
        return {**described, "read": read} if read else described

    return app
