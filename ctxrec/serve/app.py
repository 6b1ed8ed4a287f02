"""The HTTP API: a thin FastAPI layer over :class:`~ctxrec.serve.service.RecService`.

Endpoints (OpenAPI docs at ``/docs``, schema at ``/openapi.json``):

- ``GET /recommend?user=&time=&place=&session=&session_items=&k=`` — items for a user in a context;
- ``GET /items/{id}/related?k=&via=`` — co_interaction, session, context or embedding;
- ``POST /search`` — JSON ``{"text": ...}`` or a multipart upload (``file``) of an image or audio clip;
- ``GET /explain?user=&item=`` — graph paths, modality weights and a sentence;
- ``POST /interactions`` — new events (needs the ``X-API-Key`` header);
- ``GET /health``.

Every 4xx (and 5xx) answers ``{"error": {"status", "code", "message", "field"}}``, FastAPI's
own validation errors included. Bodies are limited (JSON 1 MB, uploads 10 MB by default):
a larger one gets 413 before it is read.

Example:
    >>> app = create_app(RecService.open(".ctxrec/model", db=".ctxrec/graph.db"), api_key="s3cret")  # doctest: +SKIP
    >>> import uvicorn; uvicorn.run(app, port=8000)                                                  # doctest: +SKIP
"""
from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.exceptions import HTTPException

from ctxrec.serve.errors import Invalid, ServiceError, error_response
from ctxrec.serve.search import AUDIO_SUFFIXES, IMAGE_SUFFIXES
from ctxrec.serve.batching import Batcher
from ctxrec.serve.fastlane import RECOMMEND_LENGTHS, RecommendLane, recommend_request
from ctxrec.serve.service import MAX_EVENTS, MAX_K, RELATED_VIA, RecService

#: default body limits in bytes
MAX_JSON_BYTES = 1 << 20
MAX_UPLOAD_BYTES = 10 << 20


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str
    field: Optional[str] = None


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class Event(BaseModel):
    """One interaction event, in the interactions seed format."""

    model_config = ConfigDict(extra="forbid")
    user_id: str = Field(min_length=1, max_length=200)
    item_id: str = Field(min_length=1, max_length=200)
    action: str = Field("view", min_length=1, max_length=50, description="view, click, cart, purchase, rating ...")
    time: Optional[str] = Field(None, max_length=64, description="ISO-8601 or unix seconds (default: now, UTC)")
    location: Optional[str] = Field(None, max_length=200)
    session_id: Optional[str] = Field(None, max_length=200, description="continue this session of the user")
    value: Optional[float] = None

    @field_validator("user_id", "item_id", "session_id")
    @classmethod
    def _no_nul(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and v.endswith("\x00"):  # the stores refuse such ids (numpy strings drop it)
            raise ValueError("an id may not end with a NUL character (U+0000)")
        return v


class Events(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: List[Event] = Field(min_length=1, max_length=MAX_EVENTS)


class TextQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=2000)
    target: Optional[str] = Field(None, description="search only these item vectors, e.g. image")
    k: int = Field(10, ge=1, le=MAX_K)


def _validation_response(errors: List[Dict[str, Any]]) -> JSONResponse:
    parts, field = [], None
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x not in ("query", "path", "body", "header")]
        if e.get("type") == "json_invalid":  # its loc is ("body", character offset): name the body
            loc = ["body"]
        name = ".".join(loc) or "request"
        field = field or (name if loc else None)
        shown = repr(e.get("input"))
        shown = shown if len(shown) <= 200 else f"{shown[:200]}... ({len(shown)} characters)"  # never echo a body
        value = f" (got {shown})" if "input" in e and not isinstance(e["input"], (dict, list)) else ""
        parts.append(f"{name}: {e.get('msg', 'invalid')}{value}")
    return error_response(422, "; ".join(parts), "invalid", field)


class BodyLimit:
    """ASGI middleware: 413 for bodies over the limit (multipart uploads get the larger one),
    from ``Content-Length`` before reading, or while reading a body sent without one."""

    def __init__(self, app, max_json: int, max_upload: int) -> None:
        self.app, self.max_json, self.max_upload = app, max_json, max_upload

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        multipart = headers.get(b"content-type", b"").startswith(b"multipart/form-data")
        limit = self.max_upload if multipart else self.max_json
        what = "upload" if multipart else "request body"
        length = headers.get(b"content-length")
        if length is not None and not length.isdigit():
            response = error_response(400, f"Content-Length {length.decode(errors='replace')!r} is not a number",
                                      field="Content-Length")
            return await response(scope, receive, send)
        if length is not None and int(length) > limit:
            response = error_response(413, f"the {what} has {int(length)} bytes; the limit is {limit} bytes",
                                      field="body")
            return await response(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413, f"the {what} exceeds the limit of {limit} bytes")
            return message

        return await self.app(scope, limited, send)


#: (method, path) of the write endpoints, whose API key is checked before their body is read
WRITES = {("POST", "/interactions")}


def key_error(api_key: Optional[str], given: Optional[bytes]) -> Optional[ServiceError]:
    """Why a write with the raw header ``X-API-Key: given`` is refused (401/403), or None when it
    matches ``api_key`` (compared as UTF-8 bytes, in constant time)."""
    if not api_key:
        return ServiceError("writes are disabled: the server has no API key; start it with "
                            "`ctxrec serve --api-key KEY` or set CTXREC_API_KEY", "X-API-Key", 403, "writes_disabled")
    if not given:
        return ServiceError("this endpoint needs the X-API-Key header", "X-API-Key", 401, "missing_api_key")
    if not secrets.compare_digest(given, api_key.encode("utf-8", "surrogateescape")):
        return ServiceError("the X-API-Key header does not match the server's key", "X-API-Key", 403, "wrong_api_key")
    return None


class WriteKey:
    """ASGI middleware: a write's API key is checked before its body is read, so a client without
    the key gets 401/403, never a body-parsing error, and its body is not read at all."""

    def __init__(self, app, api_key: Optional[str]) -> None:
        self.app, self.api_key = app, api_key

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and (scope["method"], scope["path"]) in WRITES:
            given = dict(scope.get("headers") or []).get(b"x-api-key")
            err = key_error(self.api_key, given)
            if err is not None:
                return await error_response(err.status, err.message, err.code, err.field)(scope, receive, send)
        return await self.app(scope, receive, send)


def create_app(service: RecService, api_key: Optional[str] = None, max_json_bytes: int = MAX_JSON_BYTES,
               max_upload_bytes: int = MAX_UPLOAD_BYTES, fast_lane: bool = True) -> FastAPI:
    """The FastAPI app over ``service``.

    Args:
        service (RecService): what answers the requests.
        api_key (str, optional): the key write endpoints require in ``X-API-Key``; with none,
            writes are refused (403) (default: None).
        max_json_bytes (int): largest JSON body (default: 1 MiB).
        max_upload_bytes (int): largest multipart upload (default: 10 MiB).
        fast_lane (bool): answer plain ``GET /recommend`` requests before FastAPI's router
            (:mod:`ctxrec.serve.fastlane`); the same answers, less Python per request (default: True).

    Returns:
        FastAPI: the app; serve it with ``uvicorn.run(app)``.
    """
    app = FastAPI(title="ctxrec", version="0.1.0",
                  description="Context-aware, multimodal recommendations over a graph store. Errors answer "
                              "`{\"error\": {\"status\", \"code\", \"message\", \"field\"}}`.",
                  responses={404: {"model": ErrorBody}, 413: {"model": ErrorBody}, 422: {"model": ErrorBody}})
    app.state.service = service
    app.add_middleware(BodyLimit, max_json=max_json_bytes, max_upload=max_upload_bytes)
    app.add_middleware(WriteKey, api_key=api_key)  # added after BodyLimit, so it runs before it
    _handlers(app)
    key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the server's API key")

    def require_key(given: Optional[str] = Depends(key_header)) -> None:
        """The OpenAPI security declaration; :class:`WriteKey` has already checked the key."""
        err = key_error(api_key, None if given is None else given.encode("latin-1"))  # Starlette decodes latin-1
        if err is not None:
            raise err

    @app.get("/health", tags=["status"])
    def health() -> Dict[str, Any]:
        """What is served: store, model, sizes, item vectors, search and write availability."""
        lane = getattr(app.state, "fast_lane", None)
        return {**service.health(), "writes": bool(api_key), "batching": app.state.batcher.stats(),
                "fast_lane": lane.stats() if lane is not None else None}

    batcher = app.state.batcher = Batcher(service.recommend_many)
    if fast_lane:  # added after WriteKey, so it runs before it: it answers GETs only
        app.add_middleware(RecommendLane, batcher=batcher, state=app.state)

    lengths = RECOMMEND_LENGTHS

    @app.get("/recommend", tags=["recommend"])
    async def recommend(user: str = Query(..., min_length=1, max_length=lengths["user"], description="a user id"),
                  time: Optional[str] = Query(None, max_length=lengths["time"],
                                              description="'sat 20:00', 'sat-evening' or ISO"),
                  place: Optional[str] = Query(None, max_length=lengths["place"], description="e.g. 'London'"),
                  session: Optional[str] = Query(None, max_length=lengths["session"], description="a session id"),
                  session_items: Optional[str] = Query(None, max_length=lengths["session_items"],
                                                       description="item ids of the session so far, comma-separated"),
                  k: int = Query(10, ge=1, le=MAX_K), filter_seen: bool = True,
                  reasons: bool = Query(True, description="a reason sentence per item")) -> Dict[str, Any]:
        """Top-k items for a user at a time and place, given the session so far (its items are excluded).

        Concurrent requests are scored together in one batch (see ``ctxrec.serve.batching``);
        plain requests are answered before the router (see ``ctxrec.serve.fastlane``)."""
        return await batcher(recommend_request(user, k, time, place, session, session_items, filter_seen, reasons))

    @app.get("/items/{item_id}/related", tags=["items"])
    def related(item_id: str, k: int = Query(10, ge=1, le=MAX_K),
                via: str = Query("co_interaction", description=f"one of {', '.join(RELATED_VIA)}")) -> Dict[str, Any]:
        """Items related to an item through co-interaction, shared sessions, shared context or embeddings."""
        return service.related(item_id, k, via)

    @app.post("/search", tags=["search"], openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": TextQuery.model_json_schema()},
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary"}, "target": {"type": "string"},
            "k": {"type": "integer", "minimum": 1, "maximum": MAX_K}}}}}}})
    async def search(request: Request) -> Dict[str, Any]:
        """Items nearest to a text (JSON) or to an uploaded image or audio clip (multipart, field `file`)."""
        kind = request.headers.get("content-type", "")
        if kind.startswith("multipart/form-data"):
            return await _search_upload(service, request)
        if not kind.startswith("application/json"):
            raise ServiceError(f"content type {kind or 'none'!r} is not supported; send JSON {{\"text\": ...}} or "
                               "multipart/form-data with a `file`", "body", 415, "unsupported_media_type")
        try:
            query = TextQuery.model_validate_json(await request.body())
        except ValidationError as e:
            raise RequestValidationError(e.errors(include_url=False)) from None
        return await run_in_threadpool(service.search, text=query.text, target=query.target, k=query.k)

    @app.get("/explain", tags=["recommend"])
    def explain(user: str = Query(..., min_length=1, max_length=200),
                item: str = Query(..., min_length=1, max_length=200)) -> Dict[str, Any]:
        """Why an item suits a user: graph paths through context nodes, modality weights, a sentence."""
        return service.explain(user, item)

    @app.post("/interactions", tags=["write"], status_code=201, dependencies=[Depends(require_key)],
              responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})
    def interactions(body: Events) -> Dict[str, Any]:
        """Append events; the next /recommend for their session excludes their items and reads them."""
        return service.add_interactions([e.model_dump() for e in body.events])

    from ctxrec.serve.web import add_web

    add_web(app, service)  # the page at / and the endpoints it reads
    return app


async def _search_upload(service: RecService, request: Request) -> Dict[str, Any]:
    form = await request.form(max_files=1, max_fields=4)
    try:
        return await _search_form(service, form)
    finally:
        await form.close()


async def _search_form(service: RecService, form) -> Dict[str, Any]:
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise Invalid("the multipart body needs a file field named `file`", "file")
    try:
        k = int(form.get("k") or 10)
    except ValueError:
        raise Invalid(f"k must be an integer, got {form.get('k')!r}", "k") from None
    target = form.get("target") or None
    suffix = Path(upload.filename or "").suffix.lower()
    ctype = (upload.content_type or "").split("/")[0]
    if suffix not in IMAGE_SUFFIXES + AUDIO_SUFFIXES:
        suffix = {"image": ".png", "audio": ".wav"}.get(ctype, suffix)
    if suffix not in IMAGE_SUFFIXES + AUDIO_SUFFIXES:
        raise Invalid(f"cannot tell the file {upload.filename!r} ({upload.content_type}) is an image or a sound; "
                      f"use one of {IMAGE_SUFFIXES + AUDIO_SUFFIXES}", "file")
    modality = "image" if suffix in IMAGE_SUFFIXES else "audio"
    data = await upload.read()
    if not data:
        raise Invalid(f"the uploaded file {upload.filename!r} is empty", "file")
    with tempfile.TemporaryDirectory(prefix="ctxrec-upload-") as tmp:
        path = Path(tmp) / f"query{suffix}"
        path.write_bytes(data)
        return await run_in_threadpool(service.search, path=path, modality=modality, target=target, k=k)


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError):
        return error_response(exc.status, exc.message, exc.code, exc.field)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return _validation_response(list(exc.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no endpoint {request.url.path}; see /docs for the endpoints"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /docs"
        field = None
        if exc.status_code == 400 and message == "There was an error parsing the body":  # FastAPI's, e.g. not UTF-8
            message, field = ("the request body cannot be read as JSON (UTF-8 text expected); send a JSON object "
                              "as the endpoint's schema in /docs shows"), "body"
        return error_response(exc.status_code, message, field=field, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        return error_response(500, f"internal error ({type(exc).__name__}); the server log has the details")
