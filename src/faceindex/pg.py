"""PostgreSQL plumbing shared by every table module: URLs, connections, write transactions,
migrations; the Postgres counterpart of :mod:`faceindex.db`.

Why an adapter rather than a second copy of the table code: the gallery's tables
(:mod:`faceindex.gallery.tables`), the audit log and the API key ring are written once, in
SQL both dialects accept, against the small :class:`Connection` protocol that a
``sqlite3.Connection`` already satisfies. :class:`PgConnection` gives a psycopg connection
the same face: ``?`` placeholders, rows readable by column name and by position, and
errors raised as the DB-API classes of :mod:`sqlite3` (``IntegrityError`` for a broken
unique constraint, ``OperationalError`` for a lost server or a lock timeout), so the
``except sqlite3.IntegrityError`` that turns a duplicate photo into a
:class:`~faceindex.errors.ConflictError` holds for both. What differs (DDL, upserts of the
schema version, vacuuming) stays in the Postgres modules.

Write discipline: SQLite's ``BEGIN IMMEDIATE`` takes the database's one write lock up
front; here every write transaction starts with ``pg_advisory_xact_lock`` on one key per
database (:data:`WRITE_LOCK`), released at commit or rollback. Writers therefore commit one
at a time, as on SQLite, which keeps two guarantees the table code relies on: a
check-then-insert inside a transaction (a name is free, the photo is not enrolled yet) sees
every earlier commit (READ COMMITTED reads the latest committed rows at each statement),
and the template log's sequence numbers commit in order, so a reader replaying it
(``changes_since``) never skips a change committed late under a lower number. Readers never
wait. Waiting for the lock is bounded by ``lock_timeout`` (30 s, as SQLite's busy timeout).

Passwords: a URL's password is only ever handed to libpq; every message and log line
names the database by :func:`redact` (``postgresql://user:***@host:port/db``), and error
texts from the server or libpq go through :func:`scrub`.

psycopg is imported lazily (the ``postgres`` extra): importing this module costs nothing.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from faceindex.errors import ConfigError, StorageError

if TYPE_CHECKING:
    import psycopg

#: URL schemes that name a PostgreSQL database (libpq accepts both).
SCHEMES = ("postgresql://", "postgres://")

#: The advisory lock every write transaction holds (the database's "write lock").
WRITE_LOCK = 0x66616365  # "face"
#: The advisory lock migrations and ``CREATE EXTENSION`` run under.
MIGRATE_LOCK = 0x66616366
#: How long a writer waits for the write lock (SQLite's busy timeout is 30 s too).
LOCK_TIMEOUT_S = 30.0


# -- the protocol both dialects' connections satisfy ------------------------------------


class Cursor(Protocol):
    """What table code reads from ``execute``: rows (by name and position) and a count."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """A connection table code writes through: ``sqlite3.Connection`` or :class:`PgConnection`."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...


# -- URLs ---------------------------------------------------------------------------------


def is_url(location: object) -> bool:
    """Whether a gallery location names a PostgreSQL database rather than a file."""
    return isinstance(location, str) and location.strip().lower().startswith(SCHEMES)


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://<unparsable URL>"
    out = url
    if parts.password is not None:
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        user = parts.username or ""
        out = urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    # a password may also be given as a query parameter (?password=...)
    return re.sub(r"(?i)(password=)[^&;\s]*", r"\1***", out)


def password_of(url: str) -> str | None:
    """The password in ``url`` (netloc or ``?password=``), if any."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.password:
        return parts.password
    found = re.search(r"(?i)password=([^&;\s]*)", parts.query)
    return found.group(1) if found and found.group(1) else None


def scrub(text: str, url: str) -> str:
    """``text`` (an error from libpq or the server) with ``url``'s password and any URL
    spelled out in it redacted."""
    secret = password_of(url)
    if secret:
        text = text.replace(secret, "***")
    return re.sub(r"postgres(?:ql)?://\S+", lambda m: redact(m.group(0)), text)


# -- errors: psycopg's, raised as sqlite3's DB-API classes ------------------------------


class PgDatabaseError(sqlite3.DatabaseError):
    """A PostgreSQL error (message scrubbed of the password)."""


class PgIntegrityError(sqlite3.IntegrityError):
    """A broken constraint (unique, foreign key, check) on PostgreSQL."""


class PgOperationalError(sqlite3.OperationalError):
    """The server went away, a lock or statement timed out, or a serialization failure."""


def _translate(exc: Exception, url: str) -> sqlite3.DatabaseError:
    import psycopg

    message = scrub(str(exc).strip(), url)
    if isinstance(exc, psycopg.errors.IntegrityError):
        return PgIntegrityError(message)
    if isinstance(exc, psycopg.OperationalError):
        return PgOperationalError(message)
    return PgDatabaseError(message)


# -- rows and cursors ---------------------------------------------------------------------


class Row(tuple[Any, ...]):
    """A result row readable by position and by column name, like ``sqlite3.Row``."""

    _names: Mapping[str, int]

    def __new__(cls, values: Sequence[Any], names: Mapping[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._names[key])
            except KeyError:
                raise IndexError(f"no column named {key!r}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


class PgCursor:
    """The rows of one statement, fetched at once (no server-side cursor is left open)."""

    def __init__(self, rows: list[Row], rowcount: int) -> None:
        self._rows = rows
        self._at = 0
        self._count = rowcount

    @property
    def rowcount(self) -> int:
        return self._count

    def fetchone(self) -> Row | None:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchall(self) -> list[Row]:
        rest = self._rows[self._at :]
        self._at = len(self._rows)
        return rest

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())


def _adapt(value: Any) -> Any:
    """numpy scalars as Python numbers (psycopg adapts no numpy scalar); numpy is only
    looked at when the value is one of its types, so this module imports nothing heavy."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return value.item()
    return value


class PgConnection:
    """A psycopg connection (autocommit; transactions are explicit) with the face of a
    ``sqlite3.Connection``: see the module docstring.

    A connection the server dropped (a restart, a failover, an idle timeout) is opened
    again at the next statement that starts something (a ``BEGIN`` or a statement outside
    a transaction), so a long-running ``faceindex serve`` outlives a database restart; a
    transaction the loss interrupted fails (nothing of it was committed)."""

    def __init__(self, url: str, *, timeout_s: float = 10.0, vectors: bool = True) -> None:
        self.url = url
        self._timeout_s = timeout_s
        self._vectors = vectors
        self._tx = False  # inside a BEGIN ... COMMIT/ROLLBACK sent through execute
        self.raw = self._open()

    @property
    def where(self) -> str:
        return redact(self.url)

    def _open(self) -> psycopg.Connection[Any]:
        try:
            import psycopg
        except ImportError as exc:
            raise ConfigError(
                "PostgreSQL galleries need psycopg: pip install 'faceindex[postgres]'"
            ) from exc
        try:
            raw = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(1, int(self._timeout_s)),
                application_name="faceindex",
            )
        except psycopg.Error as exc:
            raise StorageError(
                f"{self.where}: cannot connect to PostgreSQL: {scrub(str(exc).strip(), self.url)}"
            ) from None
        except ValueError as exc:  # psycopg's URL/conninfo parsing
            raise ConfigError(
                f"{self.where}: not a usable PostgreSQL URL: {scrub(str(exc), self.url)}"
            ) from None
        self.raw = raw
        self._tx = False
        try:
            self.execute(f"SET lock_timeout = '{int(LOCK_TIMEOUT_S * 1000)}ms'")
            if self._vectors:
                ensure_vector_extension(self)
                from pgvector.psycopg import register_vector

                register_vector(raw)
        except BaseException:
            raw.close()
            raise
        return raw

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> PgCursor:
        """Run one statement; ``?`` placeholders (as in SQLite) become psycopg's ``%s``.
        Without parameters the text goes as it is (it may hold several statements)."""
        import psycopg

        verb = sql.lstrip()[:8].upper()
        if self.raw.broken:
            if verb.startswith("ROLLBACK"):  # the server already dropped the transaction
                self._tx = False
                return PgCursor([], -1)
            if self._tx and not verb.startswith("BEGIN"):
                raise PgOperationalError(
                    f"{self.where}: the connection was lost during a transaction "
                    "(nothing of it was committed)"
                )
            self._open()
        if parameters:
            query = sql.replace("%", "%%").replace("?", "%s")
            params: tuple[Any, ...] | None = tuple(_adapt(p) for p in parameters)
        else:
            query, params = sql, None
        starts = verb.startswith("BEGIN") or not self._tx  # nothing to lose if it fails
        if verb.startswith("BEGIN"):
            self._tx = True
        elif verb.startswith(("COMMIT", "ROLLBACK")):
            self._tx = False
        retried = False
        while True:
            try:
                cur = self.raw.execute(query.encode(), params)
                rows: list[Row] = []
                if cur.description is not None:
                    names = {c.name: i for i, c in enumerate(cur.description)}
                    rows = [Row(r, names) for r in cur.fetchall()]
                return PgCursor(rows, cur.rowcount)
            except psycopg.Error as exc:
                if not retried and starts and self.raw.broken:  # dropped while idle: again
                    retried = True
                    self._open()
                    self._tx = verb.startswith("BEGIN")
                    continue
                raise _translate(exc, self.url) from None

    def close(self) -> None:
        self.raw.close()

    @property
    def in_transaction(self) -> bool:
        import psycopg.pq

        return self._tx or self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


def connect(url: str, *, timeout_s: float = 10.0, vectors: bool = True) -> PgConnection:
    """Connect to the database ``url`` names (autocommit; ``lock_timeout`` as SQLite's busy
    timeout). With ``vectors``, pgvector's types are registered (the extension is created
    if missing: see :func:`ensure_vector_extension`). Every failure is a
    :class:`StorageError` (server unreachable, database missing, bad credentials) or
    :class:`ConfigError` (psycopg not installed, no pgvector), with the password redacted."""
    return PgConnection(url, timeout_s=timeout_s, vectors=vectors)


def ensure_vector_extension(conn: PgConnection) -> None:
    """Create the pgvector extension if it is missing; a clear :class:`ConfigError` when the
    server has no pgvector or the role may not create it."""
    present = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
    if present is not None:
        return
    try:
        with write_transaction(conn, threading.Lock(), lock_key=MIGRATE_LOCK):
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except (sqlite3.DatabaseError, StorageError) as exc:
        raise ConfigError(
            f"{conn.where}: the pgvector extension is not available ({exc}). Install pgvector "
            "on the server (e.g. apt install postgresql-NN-pgvector, or a managed PostgreSQL "
            "with pgvector) and run 'CREATE EXTENSION vector;' as a superuser in this database"
        ) from None


@contextmanager
def write_transaction(
    conn: PgConnection, lock: threading.RLock | threading.Lock, *, lock_key: int = WRITE_LOCK
) -> Iterator[PgConnection]:
    """``BEGIN`` + the database's advisory write lock ... ``COMMIT`` on ``conn`` under
    ``lock``; rolled back on any error (see the module docstring)."""
    with lock:
        try:
            conn.execute("BEGIN")
            conn.execute(f"SELECT pg_advisory_xact_lock({int(lock_key)})")
        except sqlite3.DatabaseError as exc:
            _rollback(conn)
            raise StorageError(f"{conn.where}: database is busy or unreachable: {exc}") from exc
        try:
            yield conn
        except BaseException:
            _rollback(conn)
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                _rollback(conn)
                raise StorageError(f"{conn.where}: commit failed: {exc}") from exc


def _rollback(conn: PgConnection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.DatabaseError:
        pass  # the connection is gone: nothing was committed


@contextmanager
def snapshot(conn: PgConnection, lock: threading.RLock | threading.Lock) -> Iterator[PgConnection]:
    """One read-only REPEATABLE READ transaction: every statement sees the same snapshot."""
    with lock:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            yield conn
        finally:
            _rollback(conn)


def migrate(conn: PgConnection, scripts: Sequence[str], *, component: str) -> int:
    """Bring ``component``'s tables to version ``len(scripts)``; returns the version found.

    As :func:`faceindex.db.migrate`: each migration runs in one transaction together with
    its version bump (Postgres DDL is transactional), under an advisory lock so that two
    processes opening a new database at once migrate it once; a version newer than this
    code knows is refused. Versions are kept in ``schema_versions`` (one row a component).
    """
    guard = threading.Lock()
    with write_transaction(conn, guard, lock_key=MIGRATE_LOCK):
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions"
            " (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
    known = len(scripts)
    found = _version(conn, component)
    if found > known:
        raise StorageError(
            f"the {component} tables in {conn.where} have schema version {found}, newer than "
            f"this faceindex knows ({known}): upgrade faceindex"
        )
    for version in range(found + 1, known + 1):
        with write_transaction(conn, guard, lock_key=MIGRATE_LOCK):
            if _version(conn, component) >= version:  # another process migrated meanwhile
                continue
            conn.execute(scripts[version - 1])
            conn.execute(
                "INSERT INTO schema_versions (component, version) VALUES (?, ?)"
                " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                (component, version),
            )
    return found


def _version(conn: PgConnection, component: str) -> int:
    row = conn.execute(
        "SELECT version FROM schema_versions WHERE component = ?", (component,)
    ).fetchone()
    return 0 if row is None else int(row[0])


def table_exists(conn: PgConnection, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(?) IS NOT NULL", (table,)).fetchone()
    return bool(row is not None and row[0])
