"""The HTTP API and page of `crosskd serve`: FastAPI over one loaded Index.

Every request is checked before it reaches the index: query text must be UTF-8, non-empty
and at most MAX_QUERY_CHARS long, k between 1 and MAX_K, video ids known to the index. Files
are served only from the package's own page files and the index's media table, never from a
path built out of the request. Captions are sent as JSON strings; the page inserts them as
text, never as HTML.
"""

from __future__ import annotations

from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from crosskd.errors import UserError
from crosskd.search.answers import answer, caption_answer, query_of
from crosskd.search.captions import UnknownCaption
from crosskd.search.index import Index, UnknownVideo
from crosskd.search.media import MediaTable
from crosskd.search.text_side import MAX_QUERY_CHARS

#: the most results one request may ask for
MAX_K = 100
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
    if not text.isdigit() or not 1 <= int(text) <= MAX_K:
        raise BadRequest(400, f"k must be a whole number from 1 to {MAX_K}, not {text[:20]!r}")
    return int(text)


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


def create_app(index: Index) -> FastAPI:
    """The app serving `index` (see the module docstring for what it refuses)."""
    app = FastAPI(title="crosskd search", docs_url=None, redoc_url=None, openapi_url=None)
    media = MediaTable(index.root)
    page = resources.files("crosskd.search") / "static"

    @app.exception_handler(BadRequest)
    def _bad(_: Request, err: BadRequest) -> JSONResponse:
        return JSONResponse({"error": str(err)}, status_code=err.status)

    @app.exception_handler(HTTPException)
    def _http(request: Request, err: HTTPException) -> JSONResponse:
        return JSONResponse({"error": f"{err.detail}: {request.url.path[:200]}"},
                            status_code=err.status_code)

    @app.middleware("http")
    async def _headers(request: Request, call_next) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    def refused(err: UserError) -> BadRequest:
        status = 404 if isinstance(err, (UnknownVideo, UnknownCaption)) else 400
        return BadRequest(status, str(err))

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
        return {"status": "ok", "videos": len(index), "captions": len(index.captions),
                "backend": index.backend, "dtype": index.dtype,
                "free_text": bool(text_side and text_side.free_text),
                "dataset": index.info.get("dataset"), "split": index.info.get("split"),
                "modalities": list(index.modalities)}

    @app.get("/search")
    def search(request: Request) -> dict[str, Any]:
        parameters = _parameters(request)
        k = _k(parameters)
        text, caption = _query_text(parameters)
        try:
            result = answer(index, query_of(index, text, caption), k)
        except UserError as err:
            raise refused(err) from None
        for hit in result["results"]:
            hit["media"] = media.kinds(hit["video_id"])
        return result

    @app.get("/captions")
    def captions(request: Request) -> dict[str, Any]:
        parameters = _parameters(request)
        video_id = _video_id(index, parameters.get("video", ""))
        return caption_answer(index, video_id, _k(parameters))

    @app.get("/videos/{video_path:path}")
    def video(video_path: str) -> Any:
        video_id, _, kind = video_path.partition("/")
        if "/" in kind or ".." in video_path:
            raise BadRequest(400, "a video id holds no slashes, '..' or control characters")
        video_id = _video_id(index, video_id)
        if kind:
            path = media.path(video_id, kind) if kind in ("video", "thumbnail") else None
            if path is None:
                raise BadRequest(404, f"no {kind[:20]!r} file for video {video_id!r}")
            return FileResponse(path)
        position = index.positions[video_id]
        return {"video_id": video_id, "captions": index.captions.texts.get(video_id, []),
                "experts": {m: bool(a) for m, a in
                            zip(index.modalities, index.availability[position])},
                "media": media.kinds(video_id)}

    return app
