"""ASGI middleware for what browsers and slow clients can do to the server.

- :class:`SecurityHeadersMiddleware`: the headers of :mod:`faceindex.api.headers` on every
  response;
- :class:`HostOriginMiddleware`: a ``Host`` outside ``ApiSettings.allowed_hosts`` is a 400
  (a DNS-rebinding page reaches the server under its own name), and a state-changing
  request (POST, PUT, PATCH, DELETE) whose ``Origin`` is not the server's own is a 403 (a
  page elsewhere making the browser enrol or erase; this matters most with ``--no-auth``,
  where the browser needs no key);
- :class:`BodyTimeoutMiddleware`: a request body not received in full within
  ``body_timeout_s`` of the app starting to read it is a 408, so slow-body connections are
  not held open.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import anyio
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from faceindex.api.errors import ApiError, error_response
from faceindex.api.headers import security_headers
from faceindex.api.settings import ApiSettings

#: Methods that change state: their Origin, when a browser sends one, must be ours.
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SecurityHeadersMiddleware:
    """Add the security headers to every HTTP response (a header the app set is kept)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    if name not in headers:
                        headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def host_name(host_header: str) -> str:
    """The host of a ``Host`` header or an origin's netloc, without the port."""
    host = host_header.strip()
    if host.startswith("["):  # [IPv6]:port
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


class HostOriginMiddleware:
    """Refuse unknown Host names (400) and cross-origin state-changing requests (403)."""

    def __init__(self, app: ASGIApp, settings: ApiSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", ())}
        host = headers.get(b"host", b"").decode("latin-1")
        # A request without Host (HTTP/1.0) comes from no browser: nothing to rebind.
        if host and not self.settings.host_allowed(host_name(host)):
            response = error_response(
                400,
                "bad_request",
                f"this server does not answer to the host name {host_name(host)!r}; add it "
                "to the allowed hosts (--allowed-host) to serve it",
                {"host": host_name(host)},
            )
            await response(scope, receive, send)
            return
        origin = headers.get(b"origin")
        method = str(scope.get("method", "GET")).upper()
        if origin is not None and method in STATE_CHANGING:
            text = origin.decode("latin-1").strip()
            if not _same_origin(text, host):
                response = error_response(
                    403,
                    "forbidden",
                    "cross-origin requests that change data are refused: send them from the "
                    "server's own pages, or without an Origin header",
                    {"origin": text[:200]},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _same_origin(origin: str, host: str) -> bool:
    """Whether ``origin`` (``scheme://host[:port]``) names the server reached at ``host``.

    Compared by host and port as the browser wrote them (both leave out a default port);
    the scheme is not compared, so a TLS-terminating proxy in front is fine.
    """
    if not host or origin == "null":
        return False
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    return parts.netloc.lower().rstrip(".") == host.strip().lower().rstrip(".")


class BodyTimeoutMiddleware:
    """A 408 when a request body is not fully received within ``timeout_s``.

    The clock starts when the app first reads the body, so time spent waiting for a worker
    is not counted. The 408 says ``Connection: close``: the rest of the body is not read.
    """

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline: float | None = None
        complete = False

        async def timed() -> Message:
            nonlocal deadline, complete
            if complete:  # after the body: waiting for a disconnect is not a slow body
                return await receive()
            if deadline is None:
                deadline = anyio.current_time() + self.timeout_s
            message: Message | None = None
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                message = await receive()
            if message is None:
                raise ApiError(
                    408,
                    "request_timeout",
                    f"the request body was not received within {self.timeout_s:g} s",
                    details={"timeout_s": self.timeout_s},
                    headers={"Connection": "close"},
                )
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        await self.app(scope, timed, send)
