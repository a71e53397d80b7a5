"""The whole gallery as one file: export (a download) and import (``admin`` scope)."""

from __future__ import annotations

import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from faceindex.api.auth import AdminAccess
from faceindex.api.errors import ApiError
from faceindex.api.openapi import errors_doc
from faceindex.api.schemas import ImportResult
from faceindex.api.state import ServicesDep

router = APIRouter(prefix="/gallery", tags=["gallery"])


@router.get(
    "/export",
    response_class=Response,
    summary="Download the whole gallery as one file",
    description="People, external ids, metadata and every face template with its model "
    "and flags; with `photos=true` also the kept photos. Encrypted with the server's "
    "template key when it has one (import then needs the same key). Audited as `export`.",
    responses={
        200: {
            "description": "the export file",
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        },
        **errors_doc(422),
    },
)
async def export_gallery(
    _: AdminAccess,
    services: ServicesDep,
    photos: Annotated[bool, Query(description="include the kept photos")] = False,
) -> Response:
    data = await services.run_db(services.gallery.export, photos=photos)
    day = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")
    return Response(
        content=data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="faceindex-gallery-{day}.fxg"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post(
    "/import",
    response_model=ImportResult,
    summary="Import an export file into the gallery",
    description="Multipart field `file`: a file from GET /gallery/export. Each person is "
    "added to the person of the same name (matched regardless of case) or created; a face "
    "whose photo is already enrolled is skipped. 409 `embedding_model_mismatch` when the "
    "file's templates come from another model; 422 `invalid_input` when it is not an export, "
    "is damaged, or is encrypted with another key than the server's. Audited as `import`.",
    responses=errors_doc(409, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                }
            },
        }
    },
)
async def import_gallery(
    request: Request,
    _: AdminAccess,
    services: ServicesDep,
) -> ImportResult:
    data = await _file_part(request, services.settings.max_request_bytes)
    report = await services.run_model(services.gallery.import_from, data)
    return ImportResult(**report.as_dict())


async def _file_part(request: Request, max_bytes: int) -> bytes:
    """The bytes of the multipart field ``file`` (415 for another body, 422 if missing)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send multipart/form-data with the field file (got {ctype or 'no content type'})",
            details={"accepted": ["multipart/form-data"]},
        )
    try:
        form = await request.form(max_files=1, max_fields=5)
    except ApiError:
        raise
    except StarletteHTTPException as exc:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": str(exc.detail), "type": "multipart_invalid"}]
        ) from exc
    try:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise RequestValidationError(
                [{"loc": ("body", "file"), "msg": "Field required (a file)", "type": "missing"}]
            )
        return await part.read(max_bytes + 1)
    finally:
        await form.close()
