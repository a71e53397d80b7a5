"""Authentication (API keys), scopes and the per-key rate limit, as one dependency.

A key is sent as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. No key, or an
unknown or revoked one: 401; a key without the endpoint's scope: 403; over its rate: 429.
With ``no_auth`` every caller has every scope and is rate-limited by client address.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from faceindex.api.errors import ApiError
from faceindex.api.ratelimit import retry_after_header
from faceindex.api.state import Services, ServicesDep
from faceindex.apikeys import Scope, effective_scopes
from faceindex.gallery import set_actor

bearer_scheme = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="the API key")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an API key (``key_id``), or anyone when auth is off."""

    key_id: int | None
    name: str
    scopes: frozenset[Scope]


_EVERYONE = Principal(None, "no-auth", effective_scopes(Scope))


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def authenticate(
    services: Services, request: Request, bearer: str | None, header_key: str | None
) -> Principal:
    if services.settings.no_auth:
        return _EVERYONE
    if request.headers.get("authorization") and bearer is None:
        raise _unauthorized("the Authorization header must be 'Bearer <API key>'")
    secret = bearer or header_key
    if not secret:
        raise _unauthorized(
            "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
        )
    key = services.keys.authenticate(secret.strip())
    if key is None:
        raise _unauthorized("unknown or revoked API key")
    return Principal(key.id, key.name, effective_scopes(key.scopes))


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits callers holding ``scope`` (and spends a rate-limit token)."""

    async def dependency(
        request: Request,
        services: ServicesDep,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
        header_key: Annotated[str | None, Security(api_key_scheme)],
    ) -> Principal:
        # Async so that the audit actor set below lives in the request's own context, which
        # the worker threads running the request's gallery calls inherit.
        principal = await services.run_db(
            authenticate, services, request, bearer.credentials if bearer else None, header_key
        )
        if scope not in principal.scopes:
            raise ApiError(
                403,
                "forbidden",
                f"this API key lacks the {scope!s} scope",
                details={"required": str(scope)},
            )
        caller = (
            f"key:{principal.key_id}"
            if principal.key_id is not None
            else f"client:{request.client.host if request.client else '?'}"
        )
        wait = services.rate.acquire(caller)
        if wait is not None:
            raise ApiError(
                429,
                "rate_limited",
                f"rate limit of {services.rate.per_minute} requests a minute reached",
                details={"retry_after_s": round(wait, 3)},
                headers={"Retry-After": retry_after_header(wait)},
            )
        request.state.principal = principal
        # The key's id with its name: a revoked key's name may be taken by a new key, and
        # the audit log must still tell the two apart.
        set_actor(
            f"key:{principal.name}#{principal.key_id}" if principal.key_id is not None else caller
        )
        return principal

    return dependency


#: Route parameters that admit callers with each scope.
ReadAccess = Annotated[Principal, Depends(require(Scope.READ))]
WriteAccess = Annotated[Principal, Depends(require(Scope.WRITE))]
AdminAccess = Annotated[Principal, Depends(require(Scope.ADMIN))]
