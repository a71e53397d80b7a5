"""API keys, scopes, no-auth mode and rate limiting."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from api_helpers import MakeClient, bearer, create_key

from faceindex.api.ratelimit import RateLimiter, retry_after_header
from faceindex.apikeys import KeyRing, Scope, effective_scopes, hash_secret, parse_scopes
from faceindex.errors import InvalidInputError, NotFoundError
from faceindex.gallery import open_gallery


def test_missing_invalid_and_revoked_keys_are_401(
    make_client: MakeClient, gallery_path: Path
) -> None:
    client = make_client()
    secret = create_key(gallery_path, "reader", "read")
    for headers in (
        {},
        bearer("fik_not-a-real-key"),
        bearer(""),
        {"Authorization": f"Basic {secret}"},
        {"X-API-Key": "nope"},
    ):
        r = client.get("/v1/people", headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/people", headers=bearer(secret)).status_code == 200
    assert client.get("/v1/people", headers={"X-API-Key": secret}).status_code == 200
    with open_gallery(gallery_path) as store:
        ring = KeyRing(store.path)
        (key,) = ring.keys()
        ring.revoke(key.id)
    assert client.get("/v1/people", headers=bearer(secret)).status_code == 401
    # Health and readiness need no key; health says auth is on.
    assert client.get("/v1/health").json()["auth"] is True
    assert client.get("/v1/ready").status_code in (200, 503)


def test_scopes_read_write_admin(make_client: MakeClient, gallery_path: Path) -> None:
    client = make_client()
    read = bearer(create_key(gallery_path, "r", "read"))
    write = bearer(create_key(gallery_path, "w", "write"))
    admin = bearer(create_key(gallery_path, "a", "admin"))

    r = client.post("/v1/people", json={"name": "Ada"}, headers=read)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert r.json()["error"]["details"] == {"required": "write"}
    r = client.post("/v1/people", json={"name": "Ada"}, headers=write)
    assert r.status_code == 201
    pid = r.json()["id"]
    for headers in (read, write, admin):  # read is implied by write and admin
        assert client.get(f"/v1/people/{pid}", headers=headers).status_code == 200
        assert client.get("/v1/eval/summary", headers=headers).status_code == 200
    assert client.patch(f"/v1/people/{pid}", json={"name": "B"}, headers=admin).status_code == 200
    for headers in (read, write):
        assert client.delete(f"/v1/people/{pid}", headers=headers).status_code == 403
        assert client.get("/v1/audit", headers=headers).status_code == 403
        assert client.get("/v1/keys", headers=headers).status_code == 403
    assert client.get("/v1/audit", headers=admin).status_code == 200
    assert client.delete(f"/v1/people/{pid}", headers=admin).status_code == 204


def test_keys_endpoints(make_client: MakeClient, gallery_path: Path) -> None:
    client = make_client()
    admin = bearer(create_key(gallery_path, "root", "admin"))
    r = client.post("/v1/keys", json={"name": "ci", "scopes": ["read", "write"]}, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["key"]["scopes"] == ["read", "write"] and created["key"]["revoked_at"] is None
    secret = created["secret"]
    assert secret.startswith("fik_") and len(secret) > 40
    assert client.post("/v1/people", json={"name": "X"}, headers=bearer(secret)).status_code == 201
    listed = client.get("/v1/keys", headers=admin).json()["items"]
    assert [k["name"] for k in listed] == ["root", "ci"]
    assert listed[0]["last_used_at"] is not None  # the admin key was used
    assert all("secret" not in k and "key_hash" not in k for k in listed)
    bad = client.post("/v1/keys", json={"name": "x", "scopes": ["root"]}, headers=admin)
    assert bad.status_code == 422
    assert client.delete(f"/v1/keys/{created['key']['id']}", headers=admin).status_code == 204
    assert client.get("/v1/people", headers=bearer(secret)).status_code == 401
    assert client.delete("/v1/keys/999", headers=admin).status_code == 404
    actions = [e["action"] for e in client.get("/v1/audit", headers=admin).json()["items"]]
    assert "api_key_create" in actions and "api_key_revoke" in actions


def test_keys_are_stored_hashed(gallery_path: Path) -> None:
    with open_gallery(gallery_path) as store:
        key, secret = KeyRing(store.path).create("ops", "write,read")
    assert key.scopes == {Scope.READ, Scope.WRITE}
    raw = gallery_path.read_bytes() + Path(f"{gallery_path}-wal").read_bytes()
    assert secret.encode() not in raw
    with sqlite3.connect(gallery_path) as conn:
        (stored,) = conn.execute("SELECT key_hash FROM api_keys").fetchone()
    assert stored == hash_secret(secret) and stored != secret


def test_scope_parsing() -> None:
    assert parse_scopes(" Read, admin ") == {Scope.READ, Scope.ADMIN}
    assert effective_scopes([Scope.ADMIN]) == set(Scope)
    assert effective_scopes([Scope.WRITE]) == {Scope.READ, Scope.WRITE}
    with pytest.raises(InvalidInputError, match="unknown scope 'root'"):
        parse_scopes("read,root")
    with pytest.raises(InvalidInputError):
        parse_scopes(" , ")


def test_key_ring_errors(gallery_path: Path) -> None:
    with open_gallery(gallery_path) as store:
        ring = KeyRing(store.path)
        with pytest.raises(InvalidInputError):
            ring.create("  ", "read")
        with pytest.raises(NotFoundError):
            ring.revoke(42)
        assert ring.authenticate("fik_x") is None and ring.authenticate("") is None
        key, secret = ring.create("k", "read")
        first = ring.revoke(key.id)
        assert ring.revoke(key.id).revoked_at == first.revoked_at  # idempotent
        assert ring.authenticate(secret) is None
        assert ring.keys(include_revoked=False) == []
        ring.close()


def test_no_auth_mode(make_client: MakeClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="faceindex.api"):
        client = make_client(no_auth=True)
    assert any(
        "AUTHENTICATION IS DISABLED" in r.message and r.levelno == logging.WARNING
        for r in caplog.records
    )
    assert client.get("/v1/health").json()["auth"] is False
    pid = client.post("/v1/people", json={"name": "Ada"}).json()["id"]
    assert client.get("/v1/audit").status_code == 200
    assert client.delete(f"/v1/people/{pid}").status_code == 204


def test_auth_on_without_keys_warns(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="faceindex.api"):
        make_client()
    assert any("no API key exists yet" in r.message for r in caplog.records)


def test_rate_limit_per_key(make_client: MakeClient, gallery_path: Path) -> None:
    client = make_client(rate_limit_per_minute=3)
    one = bearer(create_key(gallery_path, "one", "read"))
    two = bearer(create_key(gallery_path, "two", "read"))
    for _ in range(3):
        assert client.get("/v1/people", headers=one).status_code == 200
    r = client.get("/v1/people", headers=one)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 20
    assert client.get("/v1/people", headers=two).status_code == 200  # buckets are per key
    assert client.get("/v1/health").status_code == 200  # health is not limited


def test_token_bucket() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])  # one token a second, 60 in a burst
    assert all(limiter.acquire("k") is None for _ in range(60))
    wait = limiter.acquire("k")
    assert wait is not None and wait == pytest.approx(1.0)
    now[0] += 0.5
    assert limiter.acquire("k") == pytest.approx(0.5)
    now[0] += 0.5
    assert limiter.acquire("k") is None
    assert limiter.acquire("other") is None
    assert RateLimiter(0).acquire("k") is None  # 0 = off
    assert retry_after_header(0.2) == "1" and retry_after_header(2.1) == "3"


def test_audit_names_the_calling_key(make_client: MakeClient, gallery_path: Path) -> None:
    from api_helpers import upload

    client = make_client()
    # A revoked key named door-7 came first: the audit tells it apart from the new door-7.
    old = create_key(gallery_path, "door-7", "write")
    with KeyRing.open(gallery_path) as ring:
        ring.revoke(1)
    writer = bearer(create_key(gallery_path, "door-7", "write"))
    admin = bearer(create_key(gallery_path, "ops", "admin"))
    pid = client.post("/v1/people", json={"name": "Obama"}, headers=writer).json()["id"]
    r = client.post(f"/v1/people/{pid}/faces", files=[upload("obama.jpg")], headers=writer)
    assert r.status_code == 200
    client.post("/v1/identify", files=[upload("obama3.jpg")], headers=writer)
    assert client.delete(f"/v1/people/{pid}", headers=admin).status_code == 204
    events = client.get("/v1/audit", headers=admin).json()["items"]
    by_action = {e["action"]: e["actor"] for e in events}
    assert by_action["create_person"] == "key:door-7#2"
    assert by_action["enroll"] == "key:door-7#2"
    assert by_action["identify"] == "key:door-7#2"
    assert by_action["delete"] == "key:ops#3"
    assert old not in str(events)  # the secret itself is never logged
