"""SQLite plumbing shared by every table module: connections, write transactions, migrations.

Why one module: the gallery store and the API key ring live in the same database file and
must open it the same way (WAL, ``synchronous=FULL``, foreign keys, ``secure_delete``) and
write through the same ``BEGIN IMMEDIATE`` discipline, so that two processes never
deadlock upgrading a read lock and a busy database fails clearly after the busy timeout.
This module knows no table: each table module brings its own numbered migrations.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from faceindex import pg
from faceindex.errors import StorageError
from faceindex.pg import Connection


def now() -> str:
    """The current UTC time as stored in every table (ISO 8601, microseconds)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


#: Modes of what faceindex creates: the database holds biometric data, so only its owner
#: may read it. SQLite creates the -wal and -shm files with the database file's mode.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def create_private(path: Path) -> bool:
    """Create ``path`` (and its missing folders) readable by its owner alone.

    The modes are set explicitly (``fchmod``/``chmod``), so they do not depend on the
    umask. An existing file or folder is left as it is. Returns whether the file was new.
    """
    missing = []
    folder = path.parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        try:
            made.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(made, PRIVATE_DIR_MODE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
    return True


def readable_by_others(path: Path) -> list[Path]:
    """The database file and its -wal/-shm companions that group or others may access."""
    found = []
    for candidate in (path, wal_path(path), path.with_name(path.name + "-shm")):
        try:
            mode = candidate.stat().st_mode
        except FileNotFoundError:
            continue
        if stat.S_IMODE(mode) & 0o077:
            found.append(candidate)
    return found


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


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The result row of ``PRAGMA wal_checkpoint(TRUNCATE)`` and the WAL's size after it."""

    busy: bool  # a reader or writer stopped the checkpoint from finishing
    log_frames: int  # frames in the WAL (-1 when not in WAL mode)
    checkpointed: int  # frames copied into the database file
    wal_bytes: int  # the -wal file's size afterwards (0 when absent)

    @property
    def complete(self) -> bool:
        """Every frame is in the database file and the WAL is truncated to nothing."""
        return not self.busy and self.log_frames == self.checkpointed and self.wal_bytes == 0


def wal_path(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def checkpoint_truncate(conn: sqlite3.Connection, path: Path) -> Checkpoint:
    """Fold the WAL into the database file and truncate it, without waiting on readers.

    A reader holding a read transaction keeps the WAL's frames alive; instead of sleeping
    in the busy handler (up to the busy timeout) this returns at once with ``busy`` set,
    so the caller can record the work as pending and retry later.
    """
    timeout = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.OperationalError:  # locked: the same as a busy result
        row = (1, -1, -1)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {timeout}")
    wal = wal_path(path)
    try:
        size = wal.stat().st_size
    except FileNotFoundError:
        size = 0
    return Checkpoint(bool(row[0]), int(row[1]), int(row[2]), size)


def migrate(
    conn: sqlite3.Connection,
    scripts: Sequence[str],
    *,
    component: str,
    rebuilds: Collection[int] = (),
) -> int:
    """Bring ``component``'s tables to version ``len(scripts)``; returns the version found.

    Each migration runs in one ``BEGIN IMMEDIATE`` transaction together with its version
    bump, so a crash mid-migration leaves the previous version intact; a version newer
    than this code knows is refused rather than guessed at. The gallery keeps its version
    in ``PRAGMA user_version`` (as every release has); other components in a
    ``schema_versions`` row of their own, so each table module migrates independently.

    The versions in ``rebuilds`` rebuild tables (SQLite's 12-step create-copy-drop-rename):
    they run with foreign keys off (a pragma that cannot change inside a transaction, so it
    is switched around it, and back on afterwards) and ``PRAGMA foreign_key_check`` must
    find nothing before their commit.
    """
    known = len(scripts)
    found = _version(conn, component)
    if found > known:
        raise StorageError(
            f"the {component} tables have schema version {found}, newer than this faceindex "
            f"knows ({known}): upgrade faceindex"
        )
    for version in range(found + 1, known + 1):
        rebuild = version in rebuilds
        if rebuild:
            conn.execute("PRAGMA foreign_keys = OFF")
        try:
            _run_one(conn, scripts[version - 1], component, version, check_keys=rebuild)
        finally:
            if rebuild:
                conn.execute("PRAGMA foreign_keys = ON")
    return found


def _run_one(
    conn: sqlite3.Connection, script: str, component: str, version: int, *, check_keys: bool
) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        if _version(conn, component) >= version:
            conn.execute("COMMIT")
            return
        for statement in split_statements(script):
            conn.execute(statement)
        if check_keys:
            broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise StorageError(
                    f"the {component} migration to version {version} would break "
                    f"{len(broken)} foreign key(s), e.g. {tuple(broken[0])}: nothing was changed"
                )
        _set_version(conn, component, version)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


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


class ComponentTables:
    """A component's own tables inside a gallery's database, on a connection of their own.

    The API key ring and the shared liveness sessions keep tables beside the gallery's, in
    the same SQLite file or PostgreSQL database, each with its own migrations. This opens
    either (a path, or a ``postgresql://`` URL through :mod:`faceindex.pg`), refuses a
    database that is not a gallery (it has no ``audit`` table), migrates ``component``, and
    gives the two ways in, both under one lock (the connection is shared by threads):
    :meth:`read` and :meth:`write`, one write transaction (``BEGIN IMMEDIATE`` on SQLite,
    the gallery's advisory write lock on PostgreSQL). A database error becomes a
    :class:`StorageError` that names ``what`` (e.g. "the API keys").
    """

    def __init__(
        self,
        location: str | Path,
        *,
        component: str,
        migrations: Sequence[str],
        pg_migrations: Sequence[str],
        what: str,
        named_rows: bool = False,
    ) -> None:
        self.what = what
        self._lock = threading.Lock()
        self._pg: pg.PgConnection | None = None
        if pg.is_url(location):
            self.where = pg.redact(str(location))
            conn = pg.connect(str(location).strip(), vectors=False)
            try:
                if not pg.table_exists(conn, "audit"):
                    raise StorageError(f"{conn.where} is not a faceindex gallery")
                pg.migrate(conn, pg_migrations, component=component)
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise StorageError(f"{conn.where}: cannot open {what} ({exc})") from exc
            except BaseException:
                conn.close()
                raise
            self._pg = conn
            return
        self.where = str(location)
        try:
            self._conn = sqlite3.connect(
                str(location), timeout=5.0, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA busy_timeout = 5000")
            self._conn.execute("PRAGMA synchronous = FULL")
            has_audit = self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'"
            ).fetchone()
            if has_audit is None:
                self._conn.close()
                raise StorageError(f"{location} is not a faceindex gallery")
            migrate(self._conn, migrations, component=component)
            if named_rows:
                self._conn.row_factory = sqlite3.Row
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{location}: cannot open {what} ({exc})") from exc

    def close(self) -> None:
        with self._lock:
            (self._pg or self._conn).close()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._lock:
            try:
                yield self._pg or self._conn
            except sqlite3.DatabaseError as exc:
                raise StorageError(f"reading {self.what} failed: {exc}") from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        try:
            if self._pg is not None:
                with pg.write_transaction(self._pg, self._lock) as pg_conn:
                    yield pg_conn
                return
            with immediate_transaction(self._conn, self._lock) as conn:
                yield conn
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"writing {self.what} failed: {exc}") from exc
