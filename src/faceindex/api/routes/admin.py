"""Administration: the audit log and the API keys (``admin`` scope)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi import Path as PathParam

from faceindex.api.auth import AdminAccess
from faceindex.api.openapi import errors_doc
from faceindex.api.schemas import (
    MAX_ID,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyInfo,
    ApiKeyList,
    AuditEvent,
    AuditList,
)
from faceindex.api.state import ServicesDep
from faceindex.apikeys import ApiKey

router = APIRouter(tags=["admin"])


@router.get(
    "/audit",
    response_model=AuditList,
    summary="Query the audit log, newest first",
    responses=errors_doc(422),
)
async def audit(
    _: AdminAccess,
    services: ServicesDep,
    action: Annotated[
        str | None, Query(max_length=100, description="enroll, identify, delete, ...")
    ] = None,
    person_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    since: Annotated[str | None, Query(max_length=64, description="ISO time, inclusive")] = None,
    until: Annotated[str | None, Query(max_length=64, description="ISO time, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditList:
    events = await services.run_db(
        services.gallery.audit,
        action=action,
        person_id=person_id,
        since=since,
        until=until,
        limit=limit,
    )
    return AuditList(items=[AuditEvent(**e) for e in events])


def _key_info(key: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(**key.as_dict())


@router.get(
    "/keys",
    response_model=ApiKeyList,
    summary="List API keys (never their secrets)",
    responses=errors_doc(),
)
async def list_keys(_: AdminAccess, services: ServicesDep) -> ApiKeyList:
    keys = await services.run_db(services.keys.keys)
    return ApiKeyList(items=[_key_info(k) for k in keys])


@router.post(
    "/keys",
    response_model=ApiKeyCreated,
    status_code=201,
    summary="Create an API key; its secret is in this answer only",
    description="409 `conflict` when an active key already has that name.",
    responses=errors_doc(409, 413, 422),
)
async def create_key(
    body: ApiKeyCreate,
    _: AdminAccess,
    services: ServicesDep,
) -> ApiKeyCreated:
    actor = services.gallery.current_actor()  # the calling key, as every audit entry names
    key, secret = await services.run_db(services.keys.create, body.name, body.scopes, actor=actor)
    return ApiKeyCreated(key=_key_info(key), secret=secret)


@router.delete(
    "/keys/{key_id}",
    status_code=204,
    response_class=Response,
    summary="Revoke an API key (at once, for every later request)",
    responses=errors_doc(404, 422),
)
async def revoke_key(
    key_id: Annotated[int, PathParam(ge=1, le=MAX_ID)],
    _: AdminAccess,
    services: ServicesDep,
) -> Response:
    actor = services.gallery.current_actor()
    await services.run_db(services.keys.revoke, key_id, actor=actor)
    return Response(status_code=204)
