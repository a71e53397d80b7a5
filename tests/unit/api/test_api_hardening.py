"""Hardening of the REST API on the fake backends: browser-facing headers, Host and Origin
checks, --no-auth on a public address, the body timeout, bounded decodes, and the request
contract (no SQL in messages, no lone surrogates, strict ids)."""

from __future__ import annotations

import functools
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")

from fastapi.testclient import TestClient  # noqa: E402

from faceindex.api import errors as api_errors  # noqa: E402
from faceindex.api.app import create_app, packaged_static_dir  # noqa: E402
from faceindex.api.settings import ApiSettings  # noqa: E402
from faceindex.errors import ConfigError  # noqa: E402
from faceindex.io import image as image_io  # noqa: E402
from faceindex.pipeline import Pipeline  # noqa: E402

PhotoOf = Callable[..., Path]
MakeClient = Callable[..., TestClient]


@pytest.fixture()
def make_client(tmp_path: Path, fake_pipeline: Pipeline) -> Iterator[MakeClient]:
    clients: list[TestClient] = []

    def make(raise_server_exceptions: bool = True, **options: Any) -> TestClient:
        options.setdefault("gallery", tmp_path / "g.db")
        options.setdefault("rate_limit_per_minute", 0)
        app = create_app(ApiSettings(**options), pipeline=fake_pipeline)
        client = TestClient(app, raise_server_exceptions=raise_server_exceptions)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def _upload(path: Path, field: str = "image") -> tuple[str, Any]:
    return (field, (path.name, path.read_bytes(), "application/octet-stream"))


def _assert_security_headers(headers: Any) -> None:
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp


# -- 5. browser-facing gaps ---------------------------------------------------------------


def test_security_headers_on_every_response(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(raise_server_exceptions=False)
    answers = [
        client.get("/v1/health"),  # 200
        client.get("/v1/people"),  # 401 (no key)
        client.get("/v1/nothing-here"),  # 404
        client.patch("/v1/people/1", content=b"{", headers={"content-type": "application/json"}),
        client.get("/"),  # the web UI
        client.get("/js/api.js"),
    ]
    assert [r.status_code for r in answers] == [200, 401, 404, 422, 200, 200]
    for r in answers:
        _assert_security_headers(r.headers)
    # A bug (500, answered by Starlette's outermost middleware) carries them too.
    open_client = make_client(raise_server_exceptions=False, no_auth=True)
    services = open_client.app.state.services  # type: ignore[attr-defined]

    def boom(*_: Any, **__: Any) -> int:
        raise RuntimeError("bug")

    monkeypatch.setattr(services.gallery, "count_people", boom)
    r = open_client.get("/v1/people")
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    _assert_security_headers(r.headers)
    # A header a route sets itself is not repeated.
    assert r.headers.get_list("x-content-type-options") == ["nosniff"]


def test_ui_policy_matches_the_page_and_docs_may_load_swagger(make_client: MakeClient) -> None:
    client = make_client(docs=True)
    page = (packaged_static_dir() / "index.html").read_text()
    csp = client.get("/").headers["content-security-policy"]
    for directive in ("script-src 'self'", "style-src 'self'", "connect-src 'self'"):
        assert directive in csp and directive in page
    docs = client.get("/docs")
    assert docs.status_code == 200
    _assert_security_headers(docs.headers)
    assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]


def test_web_ui_keeps_the_api_key_for_the_tab_only() -> None:
    api_js = (packaged_static_dir() / "js" / "api.js").read_text()
    assert "sessionStorage.setItem(KEY_STORAGE" in api_js
    assert "localStorage.setItem" not in api_js and "localStorage.getItem" not in api_js


def test_unknown_host_names_are_refused(make_client: MakeClient) -> None:
    client = make_client(no_auth=True)
    for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST", "testserver"):
        assert client.get("/v1/health", headers={"host": host}).status_code == 200, host
    r = client.get("/v1/people", headers={"host": "rebind.attacker.example:8000"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    _assert_security_headers(r.headers)
    assert (
        client.post(
            "/v1/people", json={"name": "Eve"}, headers={"host": "rebind.attacker.example"}
        ).status_code
        == 400
    )
    assert client.get("/v1/people").json()["total"] == 0
    # Configured names replace the defaults; '*' allows any.
    named = make_client(no_auth=True, allowed_hosts=("faces.lan",))
    assert named.get("/v1/health", headers={"host": "faces.lan:8000"}).status_code == 200
    assert named.get("/v1/health", headers={"host": "localhost"}).status_code == 400
    anything = make_client(allowed_hosts=("*",))
    assert anything.get("/v1/health", headers={"host": "x.example"}).status_code == 200
    # Bound to every interface, the names clients use cannot be known: any is served.
    public = make_client(host="0.0.0.0")
    assert public.get("/v1/health", headers={"host": "192.0.2.7:8000"}).status_code == 200


def test_cross_origin_changes_are_refused(make_client: MakeClient, photo_of: PhotoOf) -> None:
    client = make_client(no_auth=True)
    evil = {"origin": "http://attacker.example"}
    r = client.post("/v1/people", json={"name": "Eve"}, headers=evil)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    null = client.post("/v1/people", json={"name": "Eve"}, headers={"origin": "null"})
    assert null.status_code == 403
    # Same origin (the browser's own page) and no Origin (curl, scripts) are fine.
    ada = client.post("/v1/people", json={"name": "Ada"}, headers={"origin": "http://testserver"})
    assert ada.status_code == 201
    pid = ada.json()["id"]
    assert client.post("/v1/people", json={"name": "Bob"}).status_code == 201
    enrol = client.post(f"/v1/people/{pid}/faces", files=[_upload(photo_of(1))], headers=evil)
    assert enrol.status_code == 403
    assert client.patch(f"/v1/people/{pid}", json={"name": "X"}, headers=evil).status_code == 403
    assert client.delete(f"/v1/people/{pid}", headers=evil).status_code == 403
    # A port is part of the origin.
    other_port = {"origin": "http://testserver:9999"}
    assert client.delete(f"/v1/people/{pid}", headers=other_port).status_code == 403
    # Reads are not state-changing (and the browser hides cross-origin answers anyway).
    assert client.get(f"/v1/people/{pid}", headers=evil).status_code == 200
    assert client.get(f"/v1/people/{pid}").json()["templates"] == 0
    same = client.delete(f"/v1/people/{pid}", headers={"origin": "http://testserver"})
    assert same.status_code == 204


def test_no_auth_on_a_public_address_needs_forcing() -> None:
    for host in ("0.0.0.0", "::", "192.0.2.7", "faces.example"):
        with pytest.raises(ConfigError, match="allow-remote-no-auth"):
            ApiSettings(host=host, no_auth=True)
        ApiSettings(host=host, no_auth=True, allow_remote_no_auth=True)
        ApiSettings(host=host)  # with API keys
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        ApiSettings(host=host, no_auth=True)
    with pytest.raises(ConfigError):
        ApiSettings(body_timeout_s=0)
    with pytest.raises(ConfigError):
        ApiSettings(max_connections=0)


# -- 6. resource exhaustion ---------------------------------------------------------------


def _stalled_request(
    client: TestClient, path: str, content_type: bytes, first_chunk: bytes
) -> tuple[int, dict[str, str], bytes]:
    """Call the app directly: send ``first_chunk``, then never the rest of the body."""
    sent: list[dict[str, Any]] = []

    async def call() -> None:
        calls = 0

        async def receive() -> dict[str, Any]:
            nonlocal calls
            calls += 1
            if calls == 1:
                return {"type": "http.request", "body": first_chunk, "more_body": True}
            await anyio.sleep_forever()
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver"), (b"content-type", content_type)],
            "client": ("127.0.0.1", 1234),
            "server": ("testserver", 80),
            "app": client.app,
        }
        with anyio.fail_after(10):
            await client.app(scope, receive, send)  # type: ignore[arg-type]

    started = time.monotonic()
    assert client.portal is not None
    client.portal.call(call)
    assert time.monotonic() - started < 5
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], headers, body


@pytest.mark.parametrize(
    ("path", "content_type", "chunk"),
    [
        ("/v1/people", b"application/json", b'{"name": "A'),  # parsed by FastAPI
        ("/v1/detect", b"application/json", b'{"image_base64": "iVBO'),  # read by uploads
        ("/v1/detect", b"multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disp"),
    ],
)
def test_slow_bodies_time_out(
    make_client: MakeClient, path: str, content_type: bytes, chunk: bytes
) -> None:
    client = make_client(no_auth=True, body_timeout_s=0.3)
    status, headers, body = _stalled_request(client, path, content_type, chunk)
    assert status == 408, body
    assert b'"request_timeout"' in body
    assert headers["connection"] == "close"
    assert headers["x-frame-options"] == "DENY"


@pytest.mark.slow  # about a second: the fast tier stays fast
def test_decodes_are_bounded_by_the_model_workers(
    make_client: MakeClient, photo_of: PhotoOf, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = threading.Lock()
    running = 0
    most = 0
    calls = 0

    def counted(real: Callable[..., Any]) -> Callable[..., Any]:
        def decode(*args: Any, **kwargs: Any) -> Any:
            nonlocal running, most, calls
            with lock:
                running += 1
                calls += 1
                most = max(most, running)
            try:
                time.sleep(0.05)
                return real(*args, **kwargs)
            finally:
                with lock:
                    running -= 1

        return decode

    monkeypatch.setattr("faceindex.api.routes.recognition.load_image", counted(image_io.load_image))
    monkeypatch.setattr("faceindex.engines.analysis.load_image", counted(image_io.load_image))
    client = make_client(no_auth=True, model_workers=2)
    pid = client.post("/v1/people", json={"name": "Ada"}).json()["id"]
    photo = photo_of(1)

    def detect() -> int:
        r = client.post("/v1/detect", files=[_upload(photo)])
        assert r.status_code == 200, r.text
        return 200

    def verify() -> int:
        files = [_upload(photo, "image_a"), _upload(photo, "image_b")]
        status: int = client.post("/v1/verify", files=files).status_code
        return status

    def enrol(batch: int) -> int:  # each its own photos: the same photo twice at once is a 409
        # Variants from 1: photo_of(1, variant=0) would rewrite the file that detect and
        # verify are uploading at that moment, and a half-written PNG is a 422.
        files = [_upload(photo_of(1, variant=1 + 10 * batch + v)) for v in range(3)]
        r = client.post(f"/v1/people/{pid}/faces", files=files)
        assert r.status_code == 200, r.text
        return 200

    jobs: list[Callable[[], int]] = []
    for batch in range(3):
        jobs += [detect, verify, functools.partial(enrol, batch)]
    results: list[int | str] = []

    def run(job: Callable[[], int]) -> None:
        try:
            results.append(job())
        except AssertionError as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [200] * len(jobs)
    assert calls == 3 + 6 + 9
    assert 1 <= most <= 2


# -- 8. contract drift --------------------------------------------------------------------


def test_conflicts_never_quote_the_database(make_client: MakeClient) -> None:
    client = make_client(no_auth=True)
    client.post("/v1/people", json={"name": "Ada", "external_id": "e1"})
    bob = client.post("/v1/people", json={"name": "Bob"}).json()
    expected = {
        "Ada": "a person named 'Ada' already exists",
        "ADA": "a person named 'Ada' already exists (names are matched regardless of case)",
        "e1": "another person already has the external id 'e1'",
    }
    for patch in ({"name": "Ada"}, {"name": "ADA"}, {"external_id": "e1"}):
        r = client.patch(f"/v1/people/{bob['id']}", json=patch)
        assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
        message = r.json()["error"]["message"]
        assert "constraint" not in message.lower() and "persons." not in message, message
        assert message == expected[next(iter(patch.values()))]
    r = client.post("/v1/people", json={"name": "ada"})
    assert r.status_code == 409 and "regardless of case" in r.json()["error"]["message"]


def test_database_text_is_cut_from_any_message() -> None:
    cut = api_errors._without_database_text
    assert cut("taken: UNIQUE constraint failed: persons.name") == "taken"
    assert cut("UNIQUE constraint failed: persons.name") == (
        "the request conflicts with the gallery's contents"
    )
    assert cut("a person named 'Ada' already exists") == "a person named 'Ada' already exists"


@pytest.fixture(scope="module")
def shared_client(
    tmp_path_factory: pytest.TempPathFactory, fake_pipeline: Pipeline
) -> Iterator[TestClient]:
    """One app for the checks that leave nothing behind (starting one takes ~0.3 s)."""
    settings = ApiSettings(
        gallery=tmp_path_factory.mktemp("shared") / "g.db", rate_limit_per_minute=0, no_auth=True
    )
    with TestClient(
        create_app(settings, pipeline=fake_pipeline), raise_server_exceptions=False
    ) as c:
        c.post("/v1/people", json={"name": "Zed"})
        yield c


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/people", b'{"name": "A\\ud800"}'),
        ("POST", "/v1/people", b'{"name": "Ada", "metadata": {"k": "\\udc00"}}'),
        ("POST", "/v1/people", b'{"name": "Ada", "metadata": {"k\\ud800": 1}}'),
        ("POST", "/v1/people", b'{"name": "Ada", "metadata": {"k": [{"x": ["\\ud800"]}]}}'),
        ("POST", "/v1/people", b'{"name": "Ada", "external_id": "\\ud800"}'),
        ("PATCH", "/v1/people/{pid}", b'{"metadata": {"note": "\\udfff"}}'),
        ("PATCH", "/v1/people/{pid}", b'{"name": "\\ud800"}'),
        ("POST", "/v1/keys", b'{"name": "\\ud800x", "scopes": ["read"]}'),
        ("POST", "/v1/monitors", b'{"source": "\\ud800.mp4"}'),
        ("POST", "/v1/verify", b'{"image_base64": "\\ud800", "person_id": 1}'),
    ],
)
def test_lone_surrogates_are_a_validation_error(
    shared_client: TestClient, method: str, path: str, body: bytes
) -> None:
    client = shared_client
    people = client.get("/v1/people").json()
    pid = next(p["id"] for p in people["items"] if p["name"] == "Zed")
    r = client.request(
        method,
        path.format(pid=pid),
        content=body,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"
    assert client.get("/v1/people").json() == people  # nothing was written


def test_surrogate_pairs_are_fine(make_client: MakeClient) -> None:
    client = make_client(no_auth=True)
    r = client.post(
        "/v1/people",
        content=b'{"name": "Ada \\ud83d\\ude00", "metadata": {"k": "\\ud83d\\ude00"}}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 201 and r.json()["name"] == "Ada \U0001f600"


@pytest.mark.parametrize("value", [b"true", b"false", b"1.0", b'"1"'])
def test_ids_in_json_are_strict_integers(
    make_client: MakeClient, photo_of: PhotoOf, value: bytes
) -> None:
    import base64

    client = make_client(no_auth=True)
    pid = client.post("/v1/people", json={"name": "Ada"}).json()["id"]
    assert pid == 1
    client.post(f"/v1/people/{pid}/faces", files=[_upload(photo_of(1))])
    image = base64.b64encode(photo_of(1, variant=1).read_bytes())
    body = b'{"image_base64": "' + image + b'", "person_id": ' + value + b"}"
    r = client.post("/v1/verify", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    ok = body.replace(b'"person_id": ' + value, b'"person_id": 1')
    r = client.post("/v1/verify", content=ok, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["match"] is True


@pytest.mark.parametrize("field", [b'"realtime": 1', b'"max_seconds": true'])
def test_monitor_flags_are_strict(shared_client: TestClient, field: bytes) -> None:
    client = shared_client
    body = b'{"source": "missing.mp4", ' + field + b"}"
    r = client.post("/v1/monitors", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
