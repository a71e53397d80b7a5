"""SQLite plumbing shared by every table module: connections, write transactions, migrations.

Why one module: the gallery store and the API key ring live in the same database file and
must open it the same way (WAL, ``synchronous=FULL``, foreign keys, ``secure_delete``) and
write through the same ``BEGIN IMMEDIATE`` discipline, so that two processes never
deadlock upgrading a read lock and a busy database fails clearly after the busy timeout.
This module knows no table: each table module brings its own numbered migrations.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from faceindex.errors import StorageError


def now() -> str:
    """The current UTC time as stored in every table (ISO 8601, microseconds)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def connect(path: Path, *, timeout_s: float = 30.0) -> sqlite3.Connection:
    """Open ``path`` in WAL mode with the pragmas every faceindex table relies on.

    ``secure_delete`` overwrites freed pages with zeros, so an erased person's vectors do
    not linger in the file; ``synchronous=FULL`` makes a committed write survive a power cut.
    """
    try:
        conn = sqlite3.connect(
            str(path), timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            conn.close()
            raise StorageError(f"{path}: cannot switch SQLite to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"{path}: not a usable faceindex database ({exc})") from exc
    return conn


@contextmanager
def immediate_transaction(
    conn: sqlite3.Connection, lock: threading.RLock | threading.Lock
) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on ``conn`` under ``lock``; rolled back on any error."""
    with lock:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StorageError(f"database is busy or read-only: {exc}") from exc
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                conn.execute("ROLLBACK")
                raise StorageError(f"commit failed: {exc}") from exc


def migrate(conn: sqlite3.Connection, scripts: Sequence[str], *, component: str) -> int:
    """Bring ``component``'s tables to version ``len(scripts)``; returns the version found.

    Each migration runs in one ``BEGIN IMMEDIATE`` transaction together with its version
    bump, so a crash mid-migration leaves the previous version intact; a version newer
    than this code knows is refused rather than guessed at. The gallery keeps its version
    in ``PRAGMA user_version`` (as every release has); other components in a
    ``schema_versions`` row of their own, so each table module migrates independently.
    """
    known = len(scripts)
    found = _version(conn, component)
    if found > known:
        raise StorageError(
            f"the {component} tables have schema version {found}, newer than this faceindex "
            f"knows ({known}): upgrade faceindex"
        )
    for version in range(found + 1, known + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            if _version(conn, component) >= version:
                conn.execute("COMMIT")
                continue
            for statement in split_statements(scripts[version - 1]):
                conn.execute(statement)
            _set_version(conn, component, version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return found


def _version(conn: sqlite3.Connection, component: str) -> int:
    if component == "gallery":
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_versions"
        " (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    row = conn.execute(
        "SELECT version FROM schema_versions WHERE component = ?", (component,)
    ).fetchone()
    return 0 if row is None else int(row[0])


def _set_version(conn: sqlite3.Connection, component: str, version: int) -> None:
    if component == "gallery":
        conn.execute(f"PRAGMA user_version = {int(version)}")
    else:
        conn.execute(
            "INSERT OR REPLACE INTO schema_versions (component, version) VALUES (?, ?)",
            (component, version),
        )


def split_statements(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    out: list[str] = []
    buf = ""
    for line in script.strip().splitlines():
        buf += line + "\n"
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        raise ValueError(f"incomplete SQL statement in migration: {buf!r}")
    return out
