"""Errors of the serving layer: each names the request field at fault and carries the HTTP
status the API answers with, so that a bad request is always a 4xx with a clear message."""
from __future__ import annotations

from typing import Dict, Optional

#: the ``code`` of an error body by HTTP status, where the error names none
CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid", 500: "internal"}


class ServiceError(Exception):
    """A request the service cannot answer as asked; ``status`` is its HTTP status.

    Args:
        message (str): what is wrong, with the value and the fix.
        field (str, optional): the request field at fault (default: None).
        status (int): HTTP status (default: the class's).
        code (str): short machine-readable name (default: the class's).
    """

    status = 400
    code = "bad_request"

    def __init__(self, message: str, field: Optional[str] = None, status: Optional[int] = None,
                 code: Optional[str] = None) -> None:
        super().__init__(message)
        self.message, self.field = message, field
        self.status = status or type(self).status
        self.code = code or type(self).code


class NotFound(ServiceError):
    """An id (user, item, session, place) the store or the trained model does not have."""

    status, code = 404, "not_found"


class Invalid(ServiceError):
    """A value that cannot be read or is out of range."""

    status, code = 422, "invalid"


class Conflict(ServiceError):
    """The service is not set up for the request (e.g. no vectors to search): the fix is on the server."""

    status, code = 409, "not_ready"


def error_response(status: int, message: str, code: Optional[str] = None, field: Optional[str] = None,
                   headers: Optional[Dict[str, str]] = None):
    """The JSON error body every failure shares: ``{"error": {"status", "code", "message", "field"}}``
    (a Starlette ``JSONResponse``; imported here, so this module needs no web framework otherwise)."""
    from starlette.responses import JSONResponse

    body = {"error": {"status": status, "code": code or CODES.get(status, "error"), "message": message,
                      "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)
