"""API keys: created, listed and revoked in the gallery database, checked on every request.

A key's secret is ``fik_`` followed by 32 random bytes (URL-safe base64): it is printed
once, at creation, and only its SHA-256 is stored (``api_keys.key_hash``). A plain hash is
enough here: the secret has 256 bits of entropy, so there is nothing for a slow password
hash to protect against. A presented secret is hashed, looked up by its hash, and the
stored hash compared again in constant time.

Scopes: ``read`` (detect, verify, identify, list and view), ``write`` (create, enrol,
rename) and ``admin`` (delete, audit, keys); ``admin`` implies ``write``, which implies
``read``.

The keys live in the gallery's database file but in a table of their own, with their own
migrations (:data:`MIGRATIONS`, version kept in ``schema_versions``): the gallery knows
nothing of them. :class:`KeyRing` holds its own connection, so checking a key never waits
on the gallery's lock; creating and revoking a key commits together with its audit entry.
Used by the REST API and the CLI; this module does not import FastAPI.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceindex import auditlog
from faceindex.db import immediate_transaction, migrate, now
from faceindex.errors import ConflictError, InvalidInputError, NotFoundError, StorageError

log = logging.getLogger(__name__)

SECRET_PREFIX = "fik_"

#: The API key table's own migrations. Galleries made before the table moved here already
#: have it (the gallery's migration 2 made it then), hence ``IF NOT EXISTS``.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS api_keys (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        scopes TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_used_at TEXT,
        revoked_at TEXT
    );
    """,
)
#: ``last_used_at`` is written at most this often per key, so a busy key does not turn
#: every read request into a database write.
TOUCH_INTERVAL_S = 60.0


class Scope(enum.StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


_IMPLIES: dict[Scope, frozenset[Scope]] = {
    Scope.READ: frozenset({Scope.READ}),
    Scope.WRITE: frozenset({Scope.READ, Scope.WRITE}),
    Scope.ADMIN: frozenset({Scope.READ, Scope.WRITE, Scope.ADMIN}),
}


def parse_scopes(scopes: str | Iterable[str]) -> frozenset[Scope]:
    """``"read,write"`` or ``["read", "write"]`` -> scopes; unknown names are an error."""
    names = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    cleaned = [n.strip().lower() for n in names if n.strip()]
    if not cleaned:
        raise InvalidInputError("give at least one scope: read, write or admin")
    valid = [str(s) for s in Scope]
    bad = [n for n in cleaned if n not in valid]
    if bad:
        raise InvalidInputError(
            f"unknown scope {bad[0]!r}; valid scopes: {', '.join(valid)}", scope=bad[0]
        )
    return frozenset(Scope(n) for n in cleaned)


def effective_scopes(scopes: Iterable[Scope]) -> frozenset[Scope]:
    """The scopes granted, with the ones they imply."""
    out: set[Scope] = set()
    for s in scopes:
        out |= _IMPLIES[s]
    return frozenset(out)


def _scopes_text(scopes: Iterable[Scope]) -> str:
    order = list(Scope)
    return ",".join(str(s) for s in sorted(set(scopes), key=order.index))


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's record (never its secret)."""

    id: int
    name: str
    scopes: frozenset[Scope]
    created_at: str
    last_used_at: str | None
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: Scope) -> bool:
        return scope in effective_scopes(self.scopes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": _scopes_text(self.scopes).split(","),
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
        }


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _validate_name(name: str) -> str:
    clean = name.strip()
    if not clean:
        raise InvalidInputError("a key's name cannot be empty")
    if len(clean) > 100:
        raise InvalidInputError("a key's name is limited to 100 characters")
    if any(ord(c) < 32 for c in clean):
        raise InvalidInputError("a key's name cannot contain control characters")
    return clean


def _row_to_key(row: sqlite3.Row | tuple[Any, ...]) -> ApiKey:
    key_id, name, scopes, created, used, revoked = tuple(row)[:6]
    return ApiKey(
        id=int(key_id),
        name=str(name),
        scopes=parse_scopes(str(scopes)),
        created_at=str(created),
        last_used_at=used,
        revoked_at=revoked,
    )


_COLUMNS = "id, name, scopes, created_at, last_used_at, revoked_at"


def create_key(
    conn: sqlite3.Connection, name: str, scopes: str | Iterable[str]
) -> tuple[ApiKey, str]:
    """Store a new key; returns its record and its secret (shown once, never stored).

    A key's name is unique among the active keys (the audit log names the key that acted
    by it): another active key of that name is a :class:`ConflictError`. A revoked key's
    name may be used again. Call inside a write transaction, so the check holds.
    """
    clean = _validate_name(name)
    granted = parse_scopes(scopes)
    taken = conn.execute(
        "SELECT id FROM api_keys WHERE name = ? AND revoked_at IS NULL", (clean,)
    ).fetchall()
    if taken:
        raise ConflictError(
            f"an active API key named {clean!r} already exists (#{taken[0][0]}); "
            "choose another name or revoke that key first",
            name=clean,
        )
    secret = new_secret()
    cur = conn.execute(
        "INSERT INTO api_keys (name, key_hash, scopes, created_at) VALUES (?, ?, ?, ?)",
        (clean, hash_secret(secret), _scopes_text(granted), now()),
    )
    return get_key(conn, int(cur.lastrowid or 0)), secret


def get_key(conn: sqlite3.Connection, key_id: int) -> ApiKey:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchall()
    if not rows:
        raise NotFoundError(f"no API key #{key_id}", key=key_id)
    return _row_to_key(rows[0])


def list_keys(conn: sqlite3.Connection, *, include_revoked: bool = True) -> list[ApiKey]:
    sql = f"SELECT {_COLUMNS} FROM api_keys"
    if not include_revoked:
        sql += " WHERE revoked_at IS NULL"
    return [_row_to_key(r) for r in conn.execute(sql + " ORDER BY id")]


def revoke_key(conn: sqlite3.Connection, key_id: int) -> ApiKey:
    """Revoke a key (idempotent: revoking a revoked key keeps its first revocation time)."""
    get_key(conn, key_id)
    conn.execute(
        "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now(), key_id)
    )
    return get_key(conn, key_id)


def find_key(conn: sqlite3.Connection, secret: str) -> ApiKey | None:
    """The active key whose secret this is, or None."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 200:
        return None
    digest = hash_secret(secret)
    rows = conn.execute(
        f"SELECT {_COLUMNS}, key_hash FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
        (digest,),
    ).fetchall()  # fetchall: no statement is left open to hold a read snapshot
    if not rows or not hmac.compare_digest(str(tuple(rows[0])[6]), digest):
        return None
    return _row_to_key(rows[0])


def touch_key(conn: sqlite3.Connection, key_id: int) -> None:
    conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now(), key_id))


class KeyRing:
    """The API keys of one gallery file, on a connection of their own (thread-safe).

    The file must be a gallery (open it with :func:`faceindex.gallery.open_gallery` first):
    key changes are written to the gallery's audit log.
    """

    def __init__(self, path: str | Path, *, actor: str = "api") -> None:
        self.path = Path(path)
        self.actor = actor
        self._lock = threading.Lock()
        self._touched: dict[int, float] = {}
        try:
            self._conn = sqlite3.connect(
                str(self.path), timeout=5.0, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA busy_timeout = 5000")
            self._conn.execute("PRAGMA synchronous = FULL")
            has_audit = self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'"
            ).fetchone()
            if has_audit is None:
                self._conn.close()
                raise StorageError(f"{self.path} is not a faceindex gallery")
            migrate(self._conn, MIGRATIONS, component="api_keys")
            self._conn.row_factory = sqlite3.Row
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path}: cannot read the API keys ({exc})") from exc

    @classmethod
    def open(cls, path: str | Path, *, actor: str = "api") -> KeyRing:
        return cls(path, actor=actor)

    def __enter__(self) -> KeyRing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.DatabaseError as exc:
                raise StorageError(f"API key lookup failed: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with immediate_transaction(self._conn, self._lock) as conn:
            yield conn

    def authenticate(self, secret: str) -> ApiKey | None:
        """The active key for ``secret`` (recording its use), or None."""
        with self._read() as conn:
            key = find_key(conn, secret)
        if key is not None:
            self._touch(key.id)
        return key

    def _touch(self, key_id: int) -> None:
        stamp = time.monotonic()
        last = self._touched.get(key_id)
        if last is not None and stamp - last < TOUCH_INTERVAL_S:
            return
        self._touched[key_id] = stamp
        try:
            with self._write() as conn:
                touch_key(conn, key_id)
        except (StorageError, sqlite3.DatabaseError) as exc:  # bookkeeping only: never fail auth
            log.debug("could not record the use of API key #%d: %s", key_id, exc)

    def create(
        self, name: str, scopes: str | Iterable[str], *, actor: str | None = None
    ) -> tuple[ApiKey, str]:
        """Create a key; ``actor`` is who did it, for the audit log (default: the ring's
        ``actor``; the REST API passes the calling key, ``key:<name>``)."""
        with self._write() as conn:
            key, secret = create_key(conn, name, scopes)
            auditlog.append(
                conn, "api_key_create", actor=actor or self.actor, details={"key_id": key.id}
            )
        return key, secret

    def keys(self, *, include_revoked: bool = True) -> list[ApiKey]:
        with self._read() as conn:
            return list_keys(conn, include_revoked=include_revoked)

    def revoke(self, key_id: int, *, actor: str | None = None) -> ApiKey:
        """Revoke a key; ``actor`` as for :meth:`create`."""
        with self._write() as conn:
            key = revoke_key(conn, key_id)
            auditlog.append(
                conn, "api_key_revoke", actor=actor or self.actor, details={"key_id": key_id}
            )
        return key
