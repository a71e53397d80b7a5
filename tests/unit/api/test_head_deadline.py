"""A client that trickles a request head is cut off; one that sends its head in time is served.

The server is real uvicorn on a loopback port with the protocol ``faceindex serve`` uses and a
half-second deadline, so the tests take about a second.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from faceindex.api.protocol import head_deadline_protocol

pytestmark = pytest.mark.slow

DEADLINE_S = 0.5


async def _hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = int(probe.getsockname()[1])
    config = uvicorn.Config(
        _hello,
        host="127.0.0.1",
        port=free,
        http=head_deadline_protocol(DEADLINE_S),
        log_level="error",
        lifespan="off",
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    yield free
    server.should_exit = True
    thread.join(5)


def _closed_after(sock: socket.socket, limit_s: float) -> float | None:
    """Seconds until the server closed ``sock``, or None if it is still open at ``limit_s``."""
    sock.settimeout(limit_s)
    start = time.monotonic()
    try:
        data = sock.recv(1024)
    except TimeoutError:
        return None
    assert data == b"", f"expected a close, got {data!r}"
    return time.monotonic() - start


def test_a_trickled_head_is_cut_off_at_the_deadline(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        start = time.monotonic()
        closed = None
        # One header line at a time: each arrives before the deadline, the head never ends.
        for i in range(10):
            try:
                sock.sendall(f"X-Slow-{i}: 1\r\n".encode())
            except OSError:
                closed = time.monotonic() - start
                break
            sock.settimeout(0.15)
            try:
                if sock.recv(1024) == b"":
                    closed = time.monotonic() - start
                    break
            except TimeoutError:
                continue
        assert closed is not None, "the server kept a never-ending request head open"
        assert closed < DEADLINE_S + 0.6


def test_a_silent_connection_is_closed(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        closed = _closed_after(sock, DEADLINE_S + 2)
        assert closed is not None and closed < DEADLINE_S + 1


def test_a_prompt_request_is_answered_and_kept_alive(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(2):  # the deadline does not close an answered keep-alive connection
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            sock.settimeout(2)
            reply = b""
            while not reply.endswith(b"0\r\n\r\n"):  # the last chunk ends the answer
                part = sock.recv(1024)
                assert part, f"the connection was closed after {reply!r}"
                reply += part
            assert reply.startswith(b"HTTP/1.1 200"), reply
            assert b"\r\nok\r\n" in reply
            time.sleep(DEADLINE_S + 0.2)  # idle past the head deadline: keep-alive rules


def test_the_deadline_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        head_deadline_protocol(0)
    with pytest.raises(ValueError, match="positive"):
        head_deadline_protocol(float("nan"))
