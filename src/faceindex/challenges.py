"""Liveness challenge sessions and their tokens in the gallery's database, shared by every
API server on it (issue 17: several ``faceindex serve`` behind a load balancer).

:class:`faceindex.liveness.sessions.SessionStore` keeps sessions in one process's memory
and signs tokens with a secret made per process, so a frame or a token that reaches another
server fails, and a token could be spent once per server. :class:`SharedSessionStore` keeps
the same things in the gallery database (a SQLite file several processes open, or the
PostgreSQL database several machines share), in tables of their own with their own
migrations, as :mod:`faceindex.apikeys` keeps the API keys:

- ``liveness_sessions``: one row per session: its nonce, the embedder's model id, its whole
  state as JSON (:func:`~faceindex.liveness.sessions.session_to_json`: the challenges'
  progress, the reference embedding, the frame counts), its deadline, when it may be
  forgotten (``purge_after``), its token's expiry, when the token was spent
  (``redeemed_at``) and a ``version`` bumped by every write;
- ``liveness_secret``: one row, the 32 random bytes that sign the tokens.

**Every change is one write transaction** (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's
advisory write lock: :func:`faceindex.db.immediate_transaction`,
:func:`faceindex.pg.write_transaction`, the writes the API keys use): the row is read, the
change applied to its state, and the row written back with ``WHERE version = ?``. Writers
commit one at a time, so two servers feeding frames to one session at once apply them one
after the other and neither's effect is lost; the version check makes a write that somehow
raced fail loudly instead of silently overwriting. Spending a token is
``UPDATE ... SET redeemed_at = ? WHERE id = ? AND redeemed_at IS NULL`` with its row count
checked, in the same kind of transaction: a token is good once across every server.

**Bounds across servers.** A new session first deletes the rows whose ``purge_after`` has
passed (its deadline plus the grace, and its token's expiry), then counts the rest under
the same write lock: the table never holds more than ``max_sessions`` rows, and the limit
holds for all the servers together, not per server.

**Why a stored secret rather than one derived from the template key.** The secret is made
once per database (``INSERT ... ON CONFLICT DO NOTHING`` then read back, so two servers
starting together agree on it), which works the same for a gallery with or without a
template key and needs no key file on every server. Deriving it with HKDF from the
template key would keep it out of the database, but it would protect little: a token is
only accepted for a session row that has passed, is unspent and lives 60 s, so forging one
needs read access to this database's session ids while they are live, and whoever can
read the database can read (or, with write access, mark passed) the session rows
themselves, and already holds every template. The secret stops tokens being made up from
nothing (and garbage from reaching the database); the row is the proof.

Clocks: sessions' deadlines and tokens' expiries are on the store's ``clock`` (wall-clock
seconds by default), so the servers sharing a database must have synchronised clocks (NTP),
as they would for any shared expiry. Used by the REST API; this module does not import
FastAPI.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from faceindex.db import ComponentTables, now
from faceindex.errors import StorageError
from faceindex.liveness.challenge import Challenge, ChallengeRules, ChallengeSession, SessionState
from faceindex.liveness.sessions import (
    MAX_SESSIONS,
    SESSION_LIFETIME_S,
    TOKEN_LIFETIME_S,
    StoredSession,
    already_used,
    check_token,
    new_session,
    purge_after,
    session_from_json,
    session_to_json,
    sessions_full,
    sign_token,
    unknown_session,
)
from faceindex.pg import Connection

COMPONENT = "liveness_sessions"

#: The tables' own migrations (SQLite).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS liveness_sessions (
        id TEXT PRIMARY KEY,
        nonce TEXT NOT NULL,
        model_id TEXT NOT NULL,
        state TEXT NOT NULL,
        expires_at REAL NOT NULL,
        purge_after REAL NOT NULL,
        token_expires_at REAL,
        redeemed_at REAL,
        version INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS liveness_sessions_purge ON liveness_sessions (purge_after);
    CREATE TABLE IF NOT EXISTS liveness_secret (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        secret TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
)
#: The same tables in a PostgreSQL gallery (``REAL`` is single precision there: seconds
#: since 1970 need double).
PG_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS liveness_sessions (
        id TEXT PRIMARY KEY,
        nonce TEXT NOT NULL,
        model_id TEXT NOT NULL,
        state TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        purge_after DOUBLE PRECISION NOT NULL,
        token_expires_at DOUBLE PRECISION,
        redeemed_at DOUBLE PRECISION,
        version INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX IF NOT EXISTS liveness_sessions_purge ON liveness_sessions (purge_after);
    CREATE TABLE IF NOT EXISTS liveness_secret (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        secret TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    """,
)

_COLUMNS = "id, nonce, model_id, state, token_expires_at, redeemed_at, version"


# -- table code (both dialects, through pg.Connection) -----------------------------------


def load_secret(conn: Connection) -> bytes:
    """The database's token secret, made the first time (call inside a write transaction)."""
    conn.execute(
        "INSERT INTO liveness_secret (id, secret, created_at) VALUES (1, ?, ?)"
        " ON CONFLICT (id) DO NOTHING",
        (secrets.token_hex(32), now()),
    )
    row = conn.execute("SELECT secret FROM liveness_secret WHERE id = 1").fetchone()
    return bytes.fromhex(str(row[0]))


def purge(conn: Connection, at: float) -> int:
    """Delete the sessions that may be forgotten at ``at``; returns how many."""
    return max(
        0, conn.execute("DELETE FROM liveness_sessions WHERE purge_after < ?", (at,)).rowcount
    )


def count(conn: Connection, at: float) -> int:
    row = conn.execute(
        "SELECT COUNT(*) FROM liveness_sessions WHERE purge_after >= ?", (at,)
    ).fetchone()
    return int(row[0])


def _read_row(conn: Connection, session_id: str, at: float) -> tuple[StoredSession, int] | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM liveness_sessions WHERE id = ? AND purge_after >= ?",
        (session_id, at),
    ).fetchone()
    if row is None:
        return None
    sid, nonce, model_id, state, token_expires, redeemed, version = tuple(row)
    stored = StoredSession(
        id=str(sid),
        nonce=str(nonce),
        model_id=str(model_id),
        challenge=session_from_json(str(state)),
        token_expires_at=None if token_expires is None else float(token_expires),
        redeemed=redeemed is not None,
    )
    return stored, int(version)


def _write_row(conn: Connection, stored: StoredSession, version: int) -> None:
    """Write ``stored`` back over the row read at ``version`` (a version that moved means
    another write slipped in: refused, never overwritten)."""
    cur = conn.execute(
        "UPDATE liveness_sessions SET state = ?, token_expires_at = ?, purge_after = ?,"
        " version = version + 1 WHERE id = ? AND version = ?",
        (
            session_to_json(stored.challenge),
            stored.token_expires_at,
            purge_after(stored.challenge, stored.token_expires_at),
            stored.id,
            version,
        ),
    )
    if cur.rowcount != 1:
        raise StorageError(
            f"liveness session {stored.id} was changed by another writer meanwhile; try again"
        )


class SharedSessionStore:
    """Challenge sessions and tokens in a gallery database (thread-safe; a
    :class:`~faceindex.liveness.sessions.ChallengeStore`). ``location`` is the gallery's
    file or ``postgresql://`` URL (``Gallery.location``); it must be a gallery already.
    ``clock`` returns seconds (wall clock by default; tests pass their own)."""

    def __init__(
        self,
        location: str | Path,
        *,
        max_sessions: int = MAX_SESSIONS,
        session_lifetime_s: float = SESSION_LIFETIME_S,
        token_lifetime_s: float = TOKEN_LIFETIME_S,
        rules: ChallengeRules | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.max_sessions = max_sessions
        self.session_lifetime_s = session_lifetime_s
        self.token_lifetime_s = token_lifetime_s
        self.rules = rules or ChallengeRules()
        self.clock = clock
        self._tables = ComponentTables(
            location,
            component=COMPONENT,
            migrations=MIGRATIONS,
            pg_migrations=PG_MIGRATIONS,
            what="the liveness sessions",
        )
        self.where = self._tables.where
        try:
            with self._write() as conn:
                self._secret = load_secret(conn)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._tables.close()

    def __enter__(self) -> SharedSessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> AbstractContextManager[Connection]:
        return self._tables.read()

    def _write(self) -> AbstractContextManager[Connection]:
        return self._tables.write()

    # -- the ChallengeStore protocol ---------------------------------------------------

    def __len__(self) -> int:
        with self._read() as conn:
            return count(conn, self.clock())

    def create(
        self,
        challenges: tuple[Challenge, ...],
        *,
        threshold: float,
        model_id: str,
        mirrored: bool = False,
    ) -> StoredSession:
        at = self.clock()
        stored = new_session(
            challenges,
            at=at,
            lifetime_s=self.session_lifetime_s,
            threshold=threshold,
            model_id=model_id,
            mirrored=mirrored,
            rules=self.rules,
        )
        with self._write() as conn:
            purge(conn, at)
            if count(conn, at) >= self.max_sessions:
                raise sessions_full(self.max_sessions, self.session_lifetime_s)
            conn.execute(
                "INSERT INTO liveness_sessions (id, nonce, model_id, state, expires_at,"
                " purge_after, version) VALUES (?, ?, ?, ?, ?, ?, 0)",
                (
                    stored.id,
                    stored.nonce,
                    model_id,
                    session_to_json(stored.challenge),
                    stored.challenge.expires_at,
                    purge_after(stored.challenge, None),
                ),
            )
        return stored

    def get(self, session_id: str) -> StoredSession | None:
        with self._read() as conn:
            found = _read_row(conn, session_id, self.clock())
        return None if found is None else found[0]

    def update(
        self, session_id: str, change: Callable[[ChallengeSession], None]
    ) -> StoredSession | None:
        with self._write() as conn:
            found = _read_row(conn, session_id, self.clock())
            if found is None:
                return None
            stored, version = found
            change(stored.challenge)
            _write_row(conn, stored, version)
        return stored

    def issue_token(self, stored: StoredSession) -> tuple[str, float]:
        """A token for a passed session (the same one each time, whichever server asks)
        and its expiry on the store's clock."""
        if stored.challenge.state is not SessionState.PASSED:
            raise ValueError("only a passed session earns a token")
        if stored.token_expires_at is None:
            expires = float(int(self.clock() + self.token_lifetime_s))
            with self._write() as conn:
                # the first server to ask fixes the expiry; the others read it back
                conn.execute(
                    "UPDATE liveness_sessions SET token_expires_at = ?,"
                    " purge_after = CASE WHEN purge_after > ? THEN purge_after ELSE ? END,"
                    " version = version + 1 WHERE id = ? AND token_expires_at IS NULL",
                    (expires, expires, expires, stored.id),
                )
                row = conn.execute(
                    "SELECT token_expires_at FROM liveness_sessions WHERE id = ?", (stored.id,)
                ).fetchone()
            if row is None or row[0] is None:
                raise unknown_session()
            stored.token_expires_at = float(row[0])
        expires = stored.token_expires_at
        return sign_token(self._secret, stored.id, expires), expires

    def redeem(self, token: str | None) -> StoredSession:
        """The passed session ``token`` was issued for, marked used in the database (once,
        whichever server it reaches); otherwise
        :class:`~faceindex.liveness.challenge.LivenessRequiredError` saying why."""
        at = self.clock()
        session_id = check_token(token, self._secret, at)
        with self._write() as conn:
            found = _read_row(conn, session_id, at)
            if found is None or found[0].challenge.state is not SessionState.PASSED:
                raise unknown_session()
            stored = found[0]
            if stored.redeemed:
                raise already_used()
            cur = conn.execute(
                "UPDATE liveness_sessions SET redeemed_at = ?, version = version + 1"
                " WHERE id = ? AND redeemed_at IS NULL",
                (at, session_id),
            )
            if cur.rowcount != 1:
                raise already_used()
        stored.redeemed = True
        return stored

    def purge(self) -> int:
        with self._write() as conn:
            return purge(conn, self.clock())


__all__ = ["COMPONENT", "MIGRATIONS", "PG_MIGRATIONS", "SharedSessionStore", "load_secret"]
