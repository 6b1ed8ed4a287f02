"""A fast lane for ``GET /recommend``: plain, well-formed requests skip FastAPI's router and
parameter machinery; everything else goes on to the app unchanged.

FastAPI spends about 0.5 ms of Python on each request before and after the endpoint runs
(routing, dependency solving, per-parameter validation, response encoding). On a small
machine that time is taken from the thread that scores the batch, twice over: it uses a core,
and it holds the GIL that the scoring thread needs back after every numpy or torch call
(``ctxrec bench serve`` has the figures). The lane reads the query string the way Starlette
does (``parse_qsl`` of the latin-1 text) and answers only when every parameter is plain: a
known name given once, within its length, ``k`` a decimal integer in range, booleans
``true`` or ``false``. Anything else (an unknown or repeated name, a value FastAPI would
coerce or refuse, a body) passes to the app, so every error body and every unusual input is
the app's own. An answered request gets the same JSON bytes the app's route would give
(``tests/test_serve.py`` compares them), and the route stays the documented endpoint.
"""
from __future__ import annotations

from typing import Any, Dict, Optional
from urllib.parse import parse_qsl

from fastapi.responses import JSONResponse

from ctxrec.serve.errors import Invalid, ServiceError, error_response
from ctxrec.serve.service import MAX_K, MAX_SESSION_ITEMS, RecRequest

#: ``/recommend``'s string parameters and their greatest length in characters (the route's
#: ``Query(max_length=...)`` reads them from here); ``user`` must also be non-empty
RECOMMEND_LENGTHS = {"user": 200, "time": 64, "place": 200, "session": 200, "session_items": 20_000}
_BOOLS = {"true": True, "false": False}
_FLAGS = ("filter_seen", "reasons")


def recommend_request(user: str, k: int = 10, time: Optional[str] = None, place: Optional[str] = None,
                      session: Optional[str] = None, session_items: Optional[str] = None, filter_seen: bool = True,
                      reasons: bool = True) -> RecRequest:
    """The :class:`RecRequest` for ``/recommend``'s parameters (``session_items`` comma-separated).

    Raises:
        Invalid: more session items than the service reads.
    """
    items = [i.strip() for i in (session_items or "").split(",") if i.strip()]
    if len(items) > MAX_SESSION_ITEMS:
        raise Invalid(f"session_items has {len(items)} ids; at most {MAX_SESSION_ITEMS}", "session_items")
    return RecRequest(user, k, time, place, session, tuple(items), filter_seen, reasons)


def plain_recommend(query_string: bytes) -> Optional[Dict[str, Any]]:
    """``/recommend``'s arguments from a query string when every parameter is plain (see the
    module text), else None: the app then reads the request itself.

    Example:
        >>> plain_recommend(b"user=u1&time=sat%2020%3A00&k=5")
        {'user': 'u1', 'time': 'sat 20:00', 'k': 5}
        >>> plain_recommend(b"user=u1&k=05") is None    # FastAPI reads it as 5; the app decides
        True
    """
    args: Dict[str, Any] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in args:
            return None
        limit = RECOMMEND_LENGTHS.get(name)
        if limit is not None:
            if len(value) > limit:
                return None
            args[name] = value
        elif name == "k":
            if not (value.isdigit() and value.isascii() and value[0] != "0" and int(value) <= MAX_K):
                return None
            args[name] = int(value)
        elif name in _FLAGS:
            if value not in _BOOLS:
                return None
            args[name] = _BOOLS[value]
        else:
            return None
    return args if args.get("user") else None


class RecommendLane:
    """ASGI middleware that answers plain ``GET /recommend`` requests through ``batcher``.

    Args:
        app: the ASGI app everything else goes to.
        batcher: awaitable ``RecRequest -> answer`` (the app's :class:`~ctxrec.serve.batching.Batcher`).
        state (optional): where to leave a reference to the lane, as ``state.fast_lane`` (the
            app's ``app.state``, for its counts in ``/health``) (default: None).
    """

    def __init__(self, app, batcher, state=None) -> None:
        self.app, self.batcher = app, batcher
        if state is not None:
            state.fast_lane = self
        self.answered = 0  # requests the lane answered, and those it passed to the app
        self.passed = 0

    async def __call__(self, scope, receive, send) -> None:
        args = self._args(scope)
        if args is None:
            if scope["type"] == "http" and scope["path"] == "/recommend":
                self.passed += 1
            return await self.app(scope, receive, send)
        self.answered += 1
        try:
            response = JSONResponse(await self.batcher(recommend_request(**args)))
        except ServiceError as e:
            response = error_response(e.status, e.message, e.code, e.field)
        await response(scope, receive, send)  # any other error goes up to the app's 500 handler

    @staticmethod
    def _args(scope) -> Optional[Dict[str, Any]]:
        if scope["type"] != "http" or scope["path"] != "/recommend" or scope["method"] != "GET":
            return None
        for name, value in scope.get("headers") or ():
            if name in (b"content-length", b"transfer-encoding") and value != b"0":
                return None  # a GET with a body: the app's limits and errors apply
        return plain_recommend(scope.get("query_string", b""))

    def stats(self) -> Dict[str, int]:
        """``/recommend`` requests the lane answered and those it passed to the app."""
        return {"answered": self.answered, "passed_on": self.passed}

