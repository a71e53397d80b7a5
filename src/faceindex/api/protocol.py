"""The HTTP/1.1 protocol the server runs: uvicorn's h11 one, with a deadline on request heads.

uvicorn times out an idle keep-alive connection and :class:`~faceindex.api.security.
BodyTimeoutMiddleware` times out a slow body, but nothing bounds the time a client takes to
send a request's head: a client that opens connections and sends one header line every few
seconds ("slowloris") holds each connection, and with ``--max-connections`` reached, locks
everyone else out. This protocol closes a connection whose request head is not complete
``header_timeout_s`` after it started (the connection was opened, or the previous response
was finished).

Only the h11 implementation is subclassed: it is the one ``faceindex serve`` selects, so the
behaviour does not depend on whether httptools happens to be installed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

#: Seconds a client has to send a complete request head (request line and headers).
DEFAULT_HEADER_TIMEOUT_S = 10.0


class HeadDeadlineH11Protocol(H11Protocol):
    """:class:`H11Protocol` that closes connections whose request head is too slow."""

    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_for_head():
            self._arm()  # keeps the first deadline: trickling bytes does not extend it
        else:
            self._disarm()

    def _waiting_for_head(self) -> bool:
        """True while bytes of a request head arrived but the head is not complete."""
        pending, closed = self.conn.trailing_data
        return self.conn.their_state is h11.IDLE and bool(pending) and not closed

    def _arm(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.header_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _expire(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered; its body has its own deadline
        log.warning(
            "closing a connection from %s: no complete request head within %.0f s",
            self.client[0] if self.client else "?",
            self.header_timeout_s,
        )
        self.transport.close()


def head_deadline_protocol(header_timeout_s: float) -> type[HeadDeadlineH11Protocol]:
    """The protocol class to give uvicorn (``http=``), with this deadline."""
    if not header_timeout_s > 0:
        raise ValueError("the request-head timeout must be positive")
    return type(
        "HeadDeadlineH11Protocol",
        (HeadDeadlineH11Protocol,),
        {"header_timeout_s": float(header_timeout_s)},
    )
