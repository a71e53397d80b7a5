"""The embedded gallery store: SQLite in WAL mode, safe across threads and processes.

Why SQLite: one file, no server to start, ACID transactions, and readers that never block
the single writer in WAL mode. Every write is one ``BEGIN IMMEDIATE`` transaction (the write
lock is taken up front, so two processes never deadlock upgrading a read lock), with a
30 s busy timeout, ``synchronous=FULL`` (a committed enrolment survives a power cut),
foreign keys on, and ``secure_delete`` on so that freed pages are overwritten with zeros:
a deleted person's vectors do not linger in the file. After a deletion the WAL is
checkpointed and truncated for the same reason.

The store does SQL only: vectors and kept photos go through the :class:`Sealer` it is
given (:mod:`faceindex.gallery.sealing`): float32 little-endian bytes in the clear, or
AES-GCM ciphertext. Nothing is ever pickled. Only :mod:`faceindex.gallery` uses this module.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from faceindex import auditlog
from faceindex.db import connect, immediate_transaction
from faceindex.errors import (
    InvalidInputError,
    StorageError,
)
from faceindex.gallery.schema import migrate
from faceindex.gallery.sealing import Sealer, photo_context
from faceindex.gallery.tables import Person, PersonTable, TemplateInfo, TemplateTable, VectorSet

__all__ = ["Person", "SqliteStore", "TemplateInfo", "VectorSet"]


class SqliteStore(PersonTable, TemplateTable):
    """Persons, photos, templates and the audit log in one SQLite file."""

    def __init__(self, path: str | Path, *, sealer: Sealer | None = None) -> None:
        self.path = Path(path)
        self.sealer = sealer or Sealer()
        self._lock = threading.RLock()
        if self.path.exists() and self.path.is_dir():
            raise InvalidInputError(f"gallery path {self.path} is a folder, not a file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = connect(self.path)
        try:
            migrate(self._conn)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StorageError(f"{self.path}: not a usable gallery database ({exc})") from exc

    # -- plumbing ---------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding SQLite's write lock from the start."""
        with immediate_transaction(self._conn, self._lock) as conn:
            yield conn

    def checkpoint(self) -> None:
        """Fold the WAL into the main file and truncate it (after erasures)."""
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- meta -------------------------------------------------------------------------

    @property
    def model_id(self) -> str | None:
        """The embedding model this gallery's templates come from (None while empty)."""
        return self.meta("model_id")

    def set_meta(self, conn: sqlite3.Connection, key: str, value: str | None) -> None:
        """Set (or with None, delete) one meta value inside a write transaction."""
        if value is None:
            conn.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def key_ids(self) -> set[str | None]:
        rows = self._query(
            "SELECT DISTINCT key_id FROM templates UNION SELECT DISTINCT data_key_id FROM photos"
            " WHERE data IS NOT NULL"
        )
        return {r[0] for r in rows}

    def reseal(self, new: Sealer) -> int:
        """Re-seal every template and kept photo with ``new`` in one transaction.

        Each blob is opened with the store's sealer and sealed with ``new``; only after
        the commit does the store switch to ``new``. Returns the templates re-sealed.
        """
        with self.transaction() as conn:
            count = 0
            for row in list(conn.execute("SELECT * FROM templates")):
                vec = self._open(row)
                blob, key_id = self._seal(new, int(row["id"]), str(row["model_id"]), vec)
                conn.execute(
                    "UPDATE templates SET vector = ?, key_id = ? WHERE id = ?",
                    (blob, key_id, row["id"]),
                )
                count += 1
            for row in list(conn.execute("SELECT * FROM photos WHERE data IS NOT NULL")):
                context = photo_context(row["person_id"], row["sha256"])
                data = self.sealer.open(bytes(row["data"]), row["data_key_id"], context)
                sealed, kid = new.seal(data, context)
                conn.execute(
                    "UPDATE photos SET data = ?, data_key_id = ? WHERE id = ?",
                    (sealed, kid, row["id"]),
                )
        self.sealer = new
        self.checkpoint()
        return count

    # -- audit ------------------------------------------------------------------------

    def audit(
        self,
        conn: sqlite3.Connection,
        action: str,
        *,
        actor: str,
        person_id: int | None = None,
        decision: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        auditlog.append(
            conn, action, actor=actor, person_id=person_id, decision=decision, details=details
        )

    def audit_events(self, **filters: Any) -> list[dict[str, Any]]:
        with self._lock:
            try:
                return auditlog.query(self._conn, **filters)
            except sqlite3.DatabaseError as exc:
                raise StorageError(f"gallery read failed: {exc}") from exc
