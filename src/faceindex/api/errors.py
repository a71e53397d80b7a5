"""The one table from errors to HTTP status codes, and the handlers that apply it.

Every error response has the body ``{"error": {"code", "message", "details"}}`` with a
stable ``code``; no traceback ever reaches a client.

- 401 ``unauthorized``: no API key, or an unknown or revoked one;
- 403 ``forbidden``: the key lacks the scope the endpoint needs;
- 404 ``not_found``: no such person, face, key, kept photo or route;
- 400 ``bad_request``: a Host name the server does not answer to (DNS rebinding);
- 403 ``forbidden``: also a cross-origin POST, PUT, PATCH or DELETE (a browser's ``Origin``
  that is not the server's own);
- 405 ``method_not_allowed``: wrong HTTP method for the route;
- 408 ``request_timeout``: the request body did not arrive within ``body_timeout_s``;
- 409 ``conflict``, ``embedding_model_mismatch``: duplicate name (matched regardless of
  case) or external id, mixed models (also an imported export of another model);
- 413 ``image_too_large``: an image over the byte or pixel limit; ``request_too_large``: a
  body over the request limit;
- 415 ``unsupported_media_type``: a body neither ``multipart/form-data`` nor JSON;
- 422 ``validation_error``: missing or malformed fields, bad JSON, bad parameters;
- 422 ``invalid_input``, ``image_decode_error``: the :class:`InvalidInputError` family (not
  an image, truncated, bad base64);
- 422 ``no_face`` (``face_too_small`` when the detector saw one under its size limit),
  ``multiple_faces``, ``quality_too_low``: a face was needed, none usable;
- 429 ``rate_limited``: the key's rate limit is spent (``Retry-After`` says when to retry);
- 500 ``config_error``, ``key_required``, ``wrong_key``: the server is misconfigured;
- 500 ``internal_error``: a bug (details only in the server log);
- 503 ``model_unavailable``, ``storage_error``, ``not_ready``: models or the gallery cannot
  be used now.

422 is used for every request that is well-formed HTTP but whose content cannot be used,
so a client needs one rule: fix the request. (Enrolment photos with no face, several faces
or low quality are not errors: they are per-photo rejections in a 200 answer.)

No message quotes the database: a clause with SQLite's own words (``UNIQUE constraint
failed: persons.name``) is cut from any error's message before it is sent (and logged).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from faceindex import errors
from faceindex.api.headers import security_headers

log = logging.getLogger(__name__)

_TABLE: tuple[tuple[type[errors.FaceIndexError], int], ...] = (
    (errors.ImageTooLargeError, 413),
    (errors.InvalidInputError, 422),
    (errors.NoFaceError, 422),
    (errors.MultipleFacesError, 422),
    (errors.QualityTooLowError, 422),
    # No HTTP status names a presentation attack; 422 with the code ``spoof_detected``
    # (403 would read as a missing API-key scope to every client, the web UI included).
    (errors.SpoofDetectedError, 422),
    (errors.NotFoundError, 404),
    (errors.ConflictError, 409),
    (errors.ModelUnavailableError, 503),
    (errors.StorageError, 503),
    (errors.ConfigError, 500),
)

#: Codes of errors raised by the HTTP layer itself, by status.
_HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "not_ready",
}


class ApiError(StarletteHTTPException):
    """An error of the HTTP layer (auth, rate limit, body format) with its status and code.

    An HTTP exception, so that one raised while FastAPI reads a body (by the body-size and
    body-time middleware) keeps its status instead of becoming FastAPI's generic 400.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status, message, dict(headers or {}))
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})


def status_for(exc: errors.FaceIndexError) -> int:
    for cls, status in _TABLE:
        if isinstance(exc, cls):
            return status
    return 422


def _jsonable(details: Mapping[str, Any]) -> dict[str, Any]:
    """Details as plain JSON values (paths and other objects become strings)."""
    out: dict[str, Any] = json.loads(json.dumps(dict(details), default=str))
    return out


def error_body(code: str, message: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": _jsonable(details or {})}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(code, message, details), status_code=status, headers=dict(headers or {})
    )


def _validation_errors(raw: Any) -> list[dict[str, Any]]:
    """Pydantic's errors without the offending input (it may be large or sensitive)."""
    out = []
    for e in raw:
        loc = [p if isinstance(p, int) else str(p) for p in e.get("loc", ())]
        out.append({"loc": loc, "message": str(e.get("msg", "")), "type": str(e.get("type", ""))})
    return out


async def _faceindex_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.FaceIndexError)
    status = status_for(exc)
    if status >= 500:
        log.error("%s %s failed: %s (%s)", request.method, request.url.path, exc.message, exc.code)
    if isinstance(exc, errors.StorageError):
        # The store's messages name server paths and SQL: keep them in the log.
        return error_response(status, exc.code, "the gallery store is unavailable; try again")
    if _quotes_database(exc.message):
        # The store quoted SQLite's own message (``UNIQUE constraint failed: persons.name``,
        # as 409 conflicts did): log it, answer with the store's own words only. The fix
        # belongs at the source (the gallery's tables); this guard keeps it off the wire.
        log.info("%s %s: %s", request.method, request.url.path, exc.message)
        return error_response(status, exc.code, _without_database_text(exc.message))
    return error_response(status, exc.code, exc.message, exc.details)


#: Fragments of SQLite's messages (``UNIQUE constraint failed: persons.name``, ...).
_DATABASE_TEXT = ("constraint failed", "sqlite", "no such table", "no such column", "syntax error")


def _quotes_database(message: str) -> bool:
    lowered = message.lower()
    return any(fragment in lowered for fragment in _DATABASE_TEXT)


def _without_database_text(message: str) -> str:
    """The message up to the clause quoting the database (``"x: UNIQUE ..."`` -> ``"x"``)."""
    kept: list[str] = []
    for clause in message.split(": "):
        if _quotes_database(clause):
            break
        kept.append(clause)
    return ": ".join(kept).strip() or "the request conflicts with the gallery's contents"


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = _validation_errors(exc.errors())
    first = problems[0] if problems else None
    message = "invalid request"
    if first is not None:
        where = ".".join(str(p) for p in first["loc"])
        message = f"{where}: {first['message']}" if where else first["message"]
    return error_response(422, "validation_error", message, {"errors": problems})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    # Answered by Starlette's outermost middleware, outside SecurityHeadersMiddleware.
    return error_response(
        500, "internal_error", "internal server error", headers=security_headers(request.url.path)
    )


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the documented body."""
    app.add_exception_handler(errors.FaceIndexError, _faceindex_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)
