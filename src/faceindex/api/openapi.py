"""Pieces of the OpenAPI document written by hand: error responses and image bodies.

The image endpoints parse their bodies themselves (multipart *or* JSON on one route, which
FastAPI cannot declare from a signature), so their request bodies are declared here and
kept in step with :mod:`faceindex.api.uploads`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from faceindex.api.schemas import ErrorResponse

_DESCRIPTIONS: dict[int, str] = {
    401: "No API key, or an unknown or revoked one (`unauthorized`)",
    403: "The API key lacks the scope this endpoint needs (`forbidden`)",
    404: "Not found (`not_found`)",
    409: "Conflicts with what is stored: duplicate name or external id (`conflict`)",
    413: "An image over the byte or pixel limit (`image_too_large`), or a body over the "
    "request limit (`request_too_large`)",
    415: "The body is neither multipart/form-data nor JSON (`unsupported_media_type`)",
    422: "Invalid request: missing or malformed fields (`validation_error`), not an image "
    "(`image_decode_error`, `invalid_input`), or no usable face where one is needed "
    "(`no_face`, `face_too_small`)",
    429: "Rate limit reached (`rate_limited`); the Retry-After header says when to retry",
    500: "Server error: misconfiguration (`config_error`) or a bug (`internal_error`)",
    503: "Models or the gallery are unavailable (`model_unavailable`, `storage_error`)",
}

_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
_AUTH_CODES = (401, 403, 429)


def errors_doc(*statuses: int, auth: bool = True) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entries of the error statuses a route can answer."""
    codes = sorted(set(statuses) | (set(_AUTH_CODES) if auth else set()) | {500, 503})
    out: dict[int | str, dict[str, Any]] = {}
    for status in codes:
        entry: dict[str, Any] = {"model": ErrorResponse, "description": _DESCRIPTIONS[status]}
        if status == 429:
            entry["headers"] = _RETRY_AFTER
        out[status] = entry
    return out


_BINARY = {"type": "string", "format": "binary", "description": "an image file"}


def image_body_doc(
    files: dict[str, bool],
    *,
    json_model: type[BaseModel] | None,
    text_fields: dict[str, dict[str, Any]] | None = None,
    required: tuple[str, ...] = (),
    description: str = "",
) -> dict[str, Any]:
    """``openapi_extra`` declaring a multipart (and optionally JSON) request body.

    ``files`` maps each multipart file field to whether it may be repeated; ``required``
    names the multipart fields that must be present.
    """
    properties: dict[str, Any] = {}
    for name, repeated in files.items():
        properties[name] = {"type": "array", "items": _BINARY} if repeated else dict(_BINARY)
    properties.update(text_fields or {})
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    content: dict[str, Any] = {"multipart/form-data": {"schema": schema}}
    if json_model is not None:
        content["application/json"] = {"schema": json_model.model_json_schema()}
    body: dict[str, Any] = {"required": True, "content": content}
    if description:
        body["description"] = description
    return {"requestBody": body}
