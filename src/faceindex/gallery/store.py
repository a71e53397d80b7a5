"""The embedded gallery store: SQLite in WAL mode, safe across threads and processes.

Why SQLite: one file, no server to start, ACID transactions, and readers that never block
the single writer in WAL mode. Every write is one ``BEGIN IMMEDIATE`` transaction (the write
lock is taken up front, so two processes never deadlock upgrading a read lock), with a
30 s busy timeout, ``synchronous=FULL`` (a committed enrolment survives a power cut),
foreign keys on, and ``secure_delete`` on so that freed pages are overwritten with zeros:
a deleted person's vectors do not linger in the file. After a deletion the WAL is
checkpointed and truncated for the same reason, without waiting on readers: while another
connection holds an old snapshot the truncation cannot happen, so the erasure is recorded
in ``pending_erasures`` (in the deleting transaction) and finished by the next write, open
or close of the gallery (:meth:`SqliteStore.finish_erasures`).

Files are private: a new gallery file is created 0600 (its -wal and -shm inherit that
mode) in folders created 0700; an existing file that group or others can read is warned
about once per open.

The store does SQL only: vectors, kept photos, and photos' digests and source names go
through the :class:`Sealer` it is given (:mod:`faceindex.gallery.sealing`): float32
little-endian bytes (or the plain digest and name) in the clear, or AES-GCM ciphertext
(with a keyed lookup standing in for the digest). Nothing is ever pickled. Only
:mod:`faceindex.gallery` uses this module.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from faceindex import auditlog
from faceindex.db import (
    Checkpoint,
    checkpoint_truncate,
    connect,
    create_private,
    immediate_transaction,
    now,
    readable_by_others,
)
from faceindex.errors import (
    EmbeddingModelMismatchError,
    InvalidInputError,
    NotFoundError,
    StorageError,
)
from faceindex.gallery.schema import migrate
from faceindex.gallery.sealing import Sealer, photo_context
from faceindex.gallery.tables import Person, PersonTable, TemplateInfo, TemplateTable, VectorSet
from faceindex.pg import Connection
from faceindex.types import Embedding

__all__ = ["GalleryStore", "Person", "SqliteStore", "TemplateInfo", "VectorSet"]

log = logging.getLogger(__name__)

#: Photo rows holding something plaintext that a key would seal: kept bytes, or the digest
#: and source name (see :mod:`faceindex.gallery.sealing`).
_CLEAR_PHOTO = "(data IS NOT NULL AND data_key_id IS NULL) OR label_key_id IS NULL"
#: Photo rows whose label is sealed but whose plain ``source`` is not empty (it never should
#: be: the sealed label holds it).
_STRAY_SOURCE = "label_key_id IS NOT NULL AND source IS NOT NULL"


class GalleryStore(PersonTable, TemplateTable):
    """What every gallery store shares, in SQL both dialects accept: erasure bookkeeping,
    meta, sealing and re-sealing, the audit log. A dialect brings the connection, its
    write transaction, and how erased data leaves the disk (:class:`SqliteStore`,
    :class:`~faceindex.gallery.pg_store.PgStore`)."""

    @property
    def path(self) -> Path:
        """The gallery's file (a :class:`ConfigError` for a store that has none)."""
        raise NotImplementedError

    @property
    def location(self) -> str | Path:
        """Where the gallery lives, as it is opened: its file, or its database URL (with
        any password: never print it; :attr:`where` is for messages)."""
        raise NotImplementedError

    @property
    def where(self) -> str:
        """Where the gallery lives, for messages and logs (no password)."""
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction holding the database's write lock from the start."""
        raise NotImplementedError

    def finish_erasures(self) -> bool:
        """Make committed erasures leave the disk; True when none is left pending."""
        raise NotImplementedError

    def integrity(self) -> str:
        """``ok`` when the database is sound, else what is wrong."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- erasure ----------------------------------------------------------------------

    def add_pending_erasure(
        self,
        conn: Connection,
        action: str,
        *,
        person_id: int | None = None,
        template_id: int | None = None,
    ) -> None:
        """Inside the deleting transaction: this erasure is done once the WAL is truncated."""
        conn.execute(
            "INSERT INTO pending_erasures (at, action, person_id, template_id) VALUES (?, ?, ?, ?)",
            (now(), action, person_id, template_id),
        )

    def pending_erasures(self) -> list[dict[str, Any]]:
        """Erasures committed whose old data may still be in the WAL, oldest first."""
        rows = self._query("SELECT * FROM pending_erasures ORDER BY id")
        return [
            {
                "id": int(r["id"]),
                "at": r["at"],
                "action": r["action"],
                "person_id": r["person_id"],
                "template_id": r["template_id"],
            }
            for r in rows
        ]

    # -- meta -------------------------------------------------------------------------

    @property
    def model_id(self) -> str | None:
        """The embedding model this gallery's templates come from (None while empty)."""
        return self.meta("model_id")

    def set_meta(self, conn: Connection, key: str, value: str | None) -> None:
        """Set (or with None, delete) one meta value inside a write transaction."""
        if value is None:
            conn.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def key_ids(self) -> set[str | None]:
        rows = self._query(
            "SELECT DISTINCT key_id FROM templates UNION SELECT DISTINCT data_key_id FROM photos"
            " WHERE data IS NOT NULL UNION SELECT DISTINCT label_key_id FROM photos"
        )
        return {r[0] for r in rows}

    def has_clear_blobs(self) -> bool:
        """Whether a template, kept photo, or photo digest and source name is stored
        unsealed (plaintext)."""
        rows = self._query(
            "SELECT EXISTS (SELECT 1 FROM templates WHERE key_id IS NULL) OR EXISTS"
            f" (SELECT 1 FROM photos WHERE {_CLEAR_PHOTO} OR ({_STRAY_SOURCE}))"
        )
        return bool(rows[0][0])

    def seal_clear(self, conn: Connection) -> tuple[int, int]:
        """Seal every plaintext template, kept photo, and photo digest and source name with
        the store's sealer, inside ``conn``'s transaction; returns (templates, photo rows)
        sealed."""
        templates = photos = 0
        for row in list(conn.execute("SELECT * FROM templates WHERE key_id IS NULL")):
            vec = self._open(row)
            blob, key_id = self._seal(self.sealer, int(row["id"]), str(row["model_id"]), vec)
            conn.execute(
                "UPDATE templates SET vector = ?, key_id = ? WHERE id = ?",
                (blob, key_id, row["id"]),
            )
            self._vector_written(conn, int(row["id"]), vec, key_id)
            templates += 1
        for row in list(conn.execute(f"SELECT * FROM photos WHERE {_CLEAR_PHOTO}")):
            label = self._label(row)
            if row["data"] is not None and row["data_key_id"] is None:
                context = photo_context(row["person_id"], label.sha256)
                sealed, kid = self.sealer.seal(bytes(row["data"]), context)
                conn.execute(
                    "UPDATE photos SET data = ?, data_key_id = ? WHERE id = ?",
                    (sealed, kid, row["id"]),
                )
            if row["label_key_id"] is None:
                self._write_label(conn, self.sealer, int(row["id"]), label)
            photos += 1
        photos += conn.execute(f"UPDATE photos SET source = NULL WHERE {_STRAY_SOURCE}").rowcount
        if templates or photos:
            self.add_pending_erasure(conn, "seal")  # the plaintext must leave the WAL
        return templates, photos

    def read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Rows of one read-only statement (for checks within this package)."""
        return self._query(sql, params)

    def reseal(self, new: Sealer) -> int:
        """Re-seal every template and kept photo with ``new`` in one transaction, and
        re-derive every photo's lookup (its digest and source sealed with ``new``, or
        plain again when ``new`` has no key).

        Each blob is opened with the store's sealer and sealed with ``new``; only after
        the commit does the store switch to ``new``. Returns the templates re-sealed.
        """
        with self.transaction() as conn:
            self.add_pending_erasure(conn, "reseal")  # the old blobs must leave the WAL
            count = 0
            for row in list(conn.execute("SELECT * FROM templates")):
                vec = self._open(row)
                blob, key_id = self._seal(new, int(row["id"]), str(row["model_id"]), vec)
                conn.execute(
                    "UPDATE templates SET vector = ?, key_id = ? WHERE id = ?",
                    (blob, key_id, row["id"]),
                )
                self._vector_written(conn, int(row["id"]), vec, key_id)
                count += 1
            for row in list(conn.execute("SELECT * FROM photos")):
                label = self._label(row)
                if row["data"] is not None:
                    context = photo_context(row["person_id"], label.sha256)
                    data = self.sealer.open(bytes(row["data"]), row["data_key_id"], context)
                    sealed, kid = new.seal(data, context)
                    conn.execute(
                        "UPDATE photos SET data = ?, data_key_id = ? WHERE id = ?",
                        (sealed, kid, row["id"]),
                    )
                self._write_label(conn, new, int(row["id"]), label)
        self.sealer = new
        self.finish_erasures()
        return count

    # -- bulk loads -------------------------------------------------------------------

    #: Templates per multi-row INSERT of :meth:`add_templates`: 10 or 11 values a row,
    #: well under SQLite's 32,766 and PostgreSQL's 65,535 parameters a statement.
    BULK_ROWS = 500
    #: A column written with each template's plaintext vector (NULL when sealed), besides
    #: the blob; None: none (see :meth:`_vector_written`).
    _VECTOR_COLUMN: str | None = None

    def _reserve_template_ids(self, conn: Connection, n: int) -> list[int]:
        """``n`` template ids no row has had, inside ``conn``'s write transaction."""
        raise NotImplementedError

    def add_templates(
        self, conn: Connection, person_ids: Sequence[int], embeddings: Sequence[Embedding]
    ) -> list[int]:
        """Many templates without photos, ``embeddings[i]`` for person ``person_ids[i]``,
        inside ``conn``'s write transaction; returns their ids, in order.

        The same rows as :meth:`add_template` (sealed by the store's sealer, logged in
        ``template_log`` by the triggers), but written :data:`BULK_ROWS` at a time: a
        template costs three statements there, which dominates a load of 10^5 templates
        (imports, benchmarks). No photo, quality, box or audit row: the caller vouches for
        the vectors and audits the load. :class:`NotFoundError` if a person is missing."""
        if len(person_ids) != len(embeddings):
            raise InvalidInputError("add_templates needs one person id per embedding")
        if not embeddings:
            return []
        model_id, dim = embeddings[0].model_id, embeddings[0].dim
        for e in embeddings:
            if e.model_id != model_id or e.dim != dim:
                raise EmbeddingModelMismatchError(
                    f"one load holds one model's templates: {model_id!r} and {e.model_id!r}",
                    gallery_model=model_id,
                    model=e.model_id,
                )
        self._bind_model(conn, model_id, dim)
        columns = ["id", "person_id", "model_id", "dim", "vector", "key_id", "flags", "created_at"]
        if self._VECTOR_COLUMN is not None:
            columns.append(self._VECTOR_COLUMN)
        row_marks = "(" + ", ".join("?" * len(columns)) + ")"
        stamp = now()
        ids: list[int] = []
        for start in range(0, len(embeddings), self.BULK_ROWS):
            chunk = embeddings[start : start + self.BULK_ROWS]
            owners = person_ids[start : start + self.BULK_ROWS]
            chunk_ids = self._reserve_template_ids(conn, len(chunk))
            values: list[object] = []
            for template_id, person_id, e in zip(chunk_ids, owners, chunk, strict=True):
                blob, key_id = self._seal(self.sealer, template_id, model_id, e.vector)
                values += [template_id, int(person_id), model_id, dim, blob, key_id, "[]", stamp]
                if self._VECTOR_COLUMN is not None:
                    values.append(None if key_id is not None else e.vector)
            rows_sql = ", ".join([row_marks] * len(chunk))
            sql = f"INSERT INTO templates ({', '.join(columns)}) VALUES {rows_sql}"
            try:
                conn.execute(sql, values)
            except sqlite3.IntegrityError as exc:
                raise NotFoundError(f"a person of the load is not in the gallery ({exc})") from exc
            ids += chunk_ids
        return ids

    # -- audit ------------------------------------------------------------------------

    def audit(
        self,
        conn: Connection,
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


class SqliteStore(GalleryStore):
    """Persons, photos, templates and the audit log in one SQLite file."""

    _conn: sqlite3.Connection

    def __init__(self, path: str | Path, *, sealer: Sealer | None = None) -> None:
        self._path = Path(path)
        self.sealer = sealer or Sealer()
        self._lock = threading.RLock()
        if self.path.exists() and self.path.is_dir():
            raise InvalidInputError(f"gallery path {self.path} is a folder, not a file")
        try:
            create_private(self.path)
        except OSError as exc:
            raise StorageError(f"cannot create the gallery file {self.path}: {exc}") from exc
        exposed = readable_by_others(self.path)
        if exposed:
            log.warning(
                "%s can be read by other users (mode %s): it holds biometric data; "
                "restrict it with chmod 600",
                ", ".join(str(p) for p in exposed),
                oct(exposed[0].stat().st_mode & 0o777),
            )
        self._conn = connect(self.path)
        try:
            migrate(self._conn)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StorageError(f"{self.path}: not a usable gallery database ({exc})") from exc
        self.finish_erasures()

    # -- plumbing ---------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def location(self) -> Path:
        return self._path

    @property
    def where(self) -> str:
        return str(self._path)

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(sqlite3.Error, StorageError):
                self.finish_erasures()
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
        self.finish_erasures()

    def _reserve_template_ids(self, conn: Connection, n: int) -> list[int]:
        # AUTOINCREMENT: past every id ever handed out, which sqlite_sequence remembers
        # (and moves past the explicit ids inserted)
        row = conn.execute(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'templates'), 0),"
            " COALESCE((SELECT MAX(id) FROM templates), 0))"
        ).fetchone()
        first = int(row[0]) + 1
        return list(range(first, first + n))

    def checkpoint(self) -> Checkpoint:
        """Fold the WAL into the main file and truncate it, without waiting on readers."""
        with self._lock:
            return checkpoint_truncate(self._conn, self.path)

    # -- erasure ----------------------------------------------------------------------

    def finish_erasures(self) -> bool:
        """Truncate the WAL if erasures are pending; True when none is left pending.

        Never waits on readers: when one still holds an old snapshot the erasures stay
        pending, to be finished by the next write, open or close.
        """
        with self._lock:
            try:
                pending = self._conn.execute("SELECT MAX(id) FROM pending_erasures").fetchone()[0]
            except sqlite3.DatabaseError as exc:
                raise StorageError(f"gallery read failed: {exc}") from exc
            if pending is None:
                return True
            if not checkpoint_truncate(self._conn, self.path).complete:
                return False
            # The erased data has left the WAL and, zeroed by secure_delete, the file.
            try:
                with immediate_transaction(self._conn, self._lock) as conn:
                    conn.execute("DELETE FROM pending_erasures WHERE id <= ?", (pending,))
            except StorageError:
                return False
            checkpoint_truncate(self._conn, self.path)
            return True

    def integrity(self) -> str:
        """``PRAGMA integrity_check``'s answer (``ok`` when the file is sound)."""
        rows = self._query("PRAGMA integrity_check")
        return "; ".join(str(r[0]) for r in rows)
