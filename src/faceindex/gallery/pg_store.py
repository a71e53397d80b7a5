"""The gallery in PostgreSQL (with pgvector): one database that several processes share.

``--gallery postgresql://user@host:port/db`` (or ``FACEINDEX_GALLERY``,
``settings.gallery.path``) opens a :class:`PgStore`: the same tables, contracts and table
code as the SQLite store (:mod:`faceindex.gallery.tables`, run through the adapter of
:mod:`faceindex.pg`), its own DDL (:mod:`faceindex.gallery.pg_schema`). Several
``faceindex serve`` processes on one database see each other's writes: writers take the
database's advisory write lock (see :mod:`faceindex.pg`: no lost or duplicated enrolment,
a name is taken once), and in-process indexes catch up by replaying ``template_log``.

**Search, and the encryption trade-off.** A gallery without a key stores each template's
vector twice: the blob every store has, and a pgvector ``embedding`` column that the
database searches itself (the ``pgvector`` index backend, :mod:`faceindex.index.pgvector`):
exact (``ORDER BY embedding <=> q``) for small galleries, through an HNSW index
(``vector_cosine_ops``, m=16, ef_construction=64) from ``index.pg_hnsw_from`` templates, the top
candidates re-ranked exactly by inner product. Nothing is loaded into the process, the
search is always current (the database is the index), and any number of API servers share
it. A gallery **with** a key seals every vector (AES-GCM) and the database cannot search
ciphertext: the ``embedding`` column stays NULL (a trigger and a CHECK make sure of it),
and each process decrypts the vectors into its own in-process index, as with SQLite,
kept current by the template log. Choose: plaintext vectors in a protected database
(access control, TLS, disk encryption; scales to the database's size) or sealed vectors
that a stolen database or backup does not give away (each server holds every vector in
memory and pays a full load at start). Filtered HNSW search misses results, so searches
are never filtered inside HNSW: one gallery per database (or schema), not a tenant column.

**Erasure.** A deleted person's rows are gone from the committed state at commit: no query
sees them. Postgres, though, deletes by marking tuples dead (MVCC); their bytes stay in the
table's pages until VACUUM removes them, and in the write-ahead log until its segments are
recycled. So an erasure is recorded in ``pending_erasures`` in the deleting transaction,
and :meth:`PgStore.finish_erasures` (run after each write, at open and close) runs
``VACUUM`` on the tables that held the data once no other session still has a
transaction older than the erasure (VACUUM cannot remove tuples an old snapshot may
see); until then the erasure stays pending and ``faceindex check`` says so, as on SQLite
with the WAL. Plain VACUUM makes the space reusable but, unlike SQLite's
``secure_delete``, does not zero it, and WAL segments, replicas and backups hold old
pages until they are recycled or expire: where that matters, use a key (sealed vectors
are useless without it), encrypted disks and backups, and ``VACUUM FULL`` in a
maintenance window. ``faceindex check`` reports pending erasures, rows of deleted people,
plaintext in a keyed gallery (vector column included) and dead tuples not yet vacuumed.

SQLite-only things and their counterparts here: WAL checkpoints (none: the server owns
its WAL), ``secure_delete`` (VACUUM, above), file modes (the database's roles and
``pg_hba.conf`` guard access: nothing faceindex can set), ``PRAGMA integrity_check``
(Postgres has no whole-database check; :meth:`PgStore.integrity` checks the vector
column agrees with the blobs). The photo library keeps its tables in the same database
(:mod:`faceindex.library.store`, opened by :attr:`PgStore.location`); its faces of an
erased person are vacuumed with the gallery's tables.

Only :mod:`faceindex.gallery` uses this module.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from faceindex import pg
from faceindex.errors import ConfigError, StorageError
from faceindex.gallery import pg_schema
from faceindex.gallery.sealing import Sealer
from faceindex.gallery.store import GalleryStore
from faceindex.index.base import FloatArray, IdArray, empty_results
from faceindex.pg import Connection, PgConnection
from faceindex.types import Embedding

__all__ = ["HNSW_BUILD_MEMORY_MAX_MB", "HNSW_EF_CONSTRUCTION", "HNSW_M", "PgStore"]

log = logging.getLogger(__name__)

#: HNSW graph parameters (pgvector's defaults are m=16, ef_construction=64).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
#: Bytes the HNSW build needs per vector besides its 4 bytes a dimension (neighbour lists:
#: 2m candidates of 16 bytes at layer 0, upper layers, element header), with slack: the
#: build session's ``maintenance_work_mem`` is raised to hold the whole graph, since
#: pgvector slows down several times once it no longer fits (the server's default is 64MB,
#: ~40k 256-d vectors). Never lowered; capped at :data:`HNSW_BUILD_MEMORY_MAX_MB`.
_HNSW_BYTES_PER_VECTOR = 32 * HNSW_M + 256
HNSW_BUILD_MEMORY_MAX_MB = 8192
#: The tables whose rows hold a person's data, vacuumed after an erasure (and the photo
#: library's faces, when the database has the library: :data:`_LIBRARY_TABLE`).
_ERASED_TABLES = ("templates", "photos", "persons")
_LIBRARY_TABLE = "library_faces"


class PgStore(GalleryStore):
    """Persons, photos, templates and the audit log in one PostgreSQL database."""

    _SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
    _LIKE = "ILIKE"
    _BINARY = ' COLLATE "C"'
    _VECTOR_COLUMN = "embedding"
    _conn: PgConnection

    def __init__(self, url: str, *, sealer: Sealer | None = None) -> None:
        self.url = url.strip()
        self.sealer = sealer or Sealer()
        self._lock = threading.RLock()
        self._plain: bool | None = None  # cached: no template is sealed and no key is set
        self._conn = pg.connect(self.url)
        try:
            pg_schema.migrate(self._conn)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StorageError(f"{self.where}: not a usable gallery database ({exc})") from exc
        except BaseException:
            self._conn.close()
            raise
        self.finish_erasures()

    # -- plumbing ---------------------------------------------------------------------

    @property
    def path(self) -> Path:
        raise ConfigError(
            f"{self.where} is a PostgreSQL gallery: it has no file (what needs one works "
            "with a SQLite gallery only)"
        )

    @property
    def location(self) -> str:
        return self.url

    @property
    def where(self) -> str:
        return pg.redact(self.url)

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(sqlite3.Error, StorageError):
                self.finish_erasures()
            self._conn.close()

    def __enter__(self) -> PgStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction holding the database's advisory write lock from the start."""
        with pg.write_transaction(self._conn, self._lock) as conn:
            yield conn
        self.finish_erasures()

    # -- erasure ----------------------------------------------------------------------

    def finish_erasures(self) -> bool:
        """VACUUM the tables of pending erasures, once no other session holds a transaction
        that began before the newest of them; True when none is left pending."""
        with self._lock:
            try:
                row = self._conn.execute("SELECT MAX(id), MAX(at) FROM pending_erasures").fetchone()
                if row is None or row[0] is None:
                    return True
                if not self.vacuum(since=str(row[1])):
                    return False
                with pg.write_transaction(self._conn, self._lock) as conn:
                    conn.execute("DELETE FROM pending_erasures WHERE id <= ?", (int(row[0]),))
            except (sqlite3.DatabaseError, StorageError) as exc:
                log.debug("%s: erasures left pending: %s", self.where, exc)
                return False
            return True

    def vacuum(self, *, since: str | None = None) -> bool:
        """VACUUM the tables that hold people's data; False (nothing done) while another
        session of this database has a transaction open since before ``since`` (an ISO
        time; None: any open transaction), whose snapshot would keep the dead rows."""
        with self._lock:
            try:
                older = self._conn.execute(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
                    " AND xact_start <= COALESCE(CAST(? AS timestamptz), now())",
                    (since,),
                ).fetchone()
                if older is not None and int(older[0]):
                    return False
                tables = list(_ERASED_TABLES)
                if pg.table_exists(self._conn, _LIBRARY_TABLE):
                    tables.append(_LIBRARY_TABLE)
                self._conn.execute("VACUUM " + ", ".join(tables))
            except sqlite3.DatabaseError as exc:
                log.debug("%s: VACUUM failed: %s", self.where, exc)
                return False
            return True

    def integrity(self) -> str:
        """``ok`` when every plaintext template has its vector in the ``embedding`` column
        and no sealed one has (Postgres has no whole-database check like SQLite's)."""
        (missing, sealed), *_ = self._query(
            "SELECT (SELECT COUNT(*) FROM templates WHERE key_id IS NULL AND embedding IS NULL),"
            " (SELECT COUNT(*) FROM templates WHERE key_id IS NOT NULL"
            " AND embedding IS NOT NULL)"
        )
        problems = []
        if missing:
            problems.append(f"{missing} plaintext template(s) lack their search vector")
        if sealed:
            problems.append(f"{sealed} sealed template(s) keep a plaintext search vector")
        return "; ".join(problems) or "ok"

    # -- the vector column and search in the database ---------------------------------

    def _vector_written(
        self, conn: Connection, template_id: int, vector: FloatArray, key_id: str | None
    ) -> None:
        value = None if key_id is not None else np.asarray(vector, dtype=np.float32)
        conn.execute("UPDATE templates SET embedding = ? WHERE id = ?", (value, template_id))
        self._plain = None

    def reseal(self, new: Sealer) -> int:
        try:
            return super().reseal(new)
        finally:
            self._plain = None

    def _reserve_template_ids(self, conn: Connection, n: int) -> list[int]:
        rows = conn.execute(
            "SELECT nextval(pg_get_serial_sequence('templates', 'id')) FROM generate_series(1, ?)",
            (int(n),),
        ).fetchall()
        return [int(r[0]) for r in rows]

    def add_templates(
        self, conn: Connection, person_ids: Sequence[int], embeddings: Sequence[Embedding]
    ) -> list[int]:
        try:
            return super().add_templates(conn, person_ids, embeddings)
        finally:
            self._plain = None

    def searchable(self) -> bool:
        """Whether the database can search this gallery's vectors: no key is set and no
        template is sealed (cached; re-read after this store seals or re-seals)."""
        if self.sealer.key is not None:
            return False
        if self._plain is None:
            rows = self._query("SELECT EXISTS (SELECT 1 FROM templates WHERE key_id IS NOT NULL)")
            self._plain = not bool(rows[0][0])
        return self._plain

    def count_vectors(self) -> int:
        rows = self._query("SELECT COUNT(*) FROM templates WHERE embedding IS NOT NULL")
        return int(rows[0][0])

    def vector_ids(self) -> IdArray:
        rows = self._query("SELECT id FROM templates WHERE embedding IS NOT NULL")
        return np.array([int(r[0]) for r in rows], dtype=np.int64)

    def unbind_model(self, conn: Connection) -> None:
        """Forget the gallery's model, and drop its HNSW index: the index casts every row
        to the old dimension, so the new model's first template would fail it."""
        super().unbind_model(conn)
        for (name,) in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'templates'"
            " AND schemaname = current_schema() AND indexname LIKE 'templates_embedding_hnsw_%'"
        ).fetchall():
            conn.execute(f'DROP INDEX IF EXISTS "{name}"')

    def _hnsw_name(self, dim: int) -> str:
        return f"templates_embedding_hnsw_{int(dim)}"

    def has_hnsw(self, dim: int) -> bool:
        return pg.table_exists(self._conn, self._hnsw_name(dim))

    def ensure_hnsw(self, dim: int) -> bool:
        """Build the HNSW index for ``dim``-d vectors if it is missing; True if it was built.
        Writes to templates wait while it builds (minutes at 10^5 vectors). The build's
        session gets the ``maintenance_work_mem`` the whole graph needs (up to
        :data:`HNSW_BUILD_MEMORY_MAX_MB`); parallel workers are the server's
        ``max_parallel_maintenance_workers`` (default 2)."""
        if self.has_hnsw(dim):
            return False
        name = self._hnsw_name(dim)
        with pg.write_transaction(self._conn, self._lock, lock_key=pg.MIGRATE_LOCK) as conn:
            (count, current), *_ = conn.execute(
                "SELECT COUNT(*), pg_size_bytes(current_setting('maintenance_work_mem'))"
                " FROM templates WHERE embedding IS NOT NULL"
            ).fetchall()
            need = int(count) * (4 * int(dim) + _HNSW_BYTES_PER_VECTOR) * 5 // 4
            memory_mb = max(
                -(-int(current) // 2**20), min(HNSW_BUILD_MEMORY_MAX_MB, -(-need // 2**20))
            )
            conn.execute(f"SET LOCAL maintenance_work_mem = '{memory_mb}MB'")
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON templates USING hnsw"
                f" ((embedding::vector({int(dim)})) vector_cosine_ops)"
                f" WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"
            )
        log.info("%s: built the HNSW index %s", self.where, name)
        return True

    def nearest(
        self, queries: FloatArray, k: int, *, dim: int, ef_search: int
    ) -> tuple[IdArray, FloatArray]:
        """Top-``k`` templates by inner product for each query, best first, padded.

        Candidates come from ``ORDER BY embedding::vector(dim) <=> q`` (through the HNSW
        index when it exists, else an exact scan), ``ef_search`` of them, re-ranked by the
        exact inner product."""
        m = len(queries)
        ids, sims = empty_results(m, k)
        candidates = max(k, ef_search)
        sql = (
            "SELECT id, -(embedding <#> q) AS sim FROM ("
            " SELECT id, embedding, CAST(? AS vector) AS q FROM templates"
            " WHERE embedding IS NOT NULL"
            f" ORDER BY embedding::vector({int(dim)}) <=> CAST(? AS vector({int(dim)}))"
            " LIMIT ?) c ORDER BY sim DESC, id LIMIT ?"
        )
        with pg.snapshot(self._conn, self._lock) as conn:
            try:
                conn.execute(f"SET LOCAL hnsw.ef_search = {int(candidates)}")
                for i, q in enumerate(np.asarray(queries, dtype=np.float32)):
                    rows = conn.execute(sql, (q, q, candidates, k)).fetchall()
                    for j, r in enumerate(rows):
                        ids[i, j] = int(r[0])
                        sims[i, j] = float(r[1])
            except sqlite3.DatabaseError as exc:
                raise StorageError(f"{self.where}: vector search failed: {exc}") from exc
        return ids, sims

    def owners(self, template_ids: list[int] | None = None) -> tuple[dict[int, int], int]:
        """Owner of each template (all, or the given ids) and the template log's position,
        from one snapshot: what an index living in the database needs in the process."""
        with pg.snapshot(self._conn, self._lock) as conn:
            try:
                seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM template_log").fetchone()
                if template_ids is None:
                    rows = conn.execute("SELECT id, person_id FROM templates").fetchall()
                else:
                    rows = conn.execute(
                        "SELECT id, person_id FROM templates WHERE id = ANY(?)",
                        ([int(t) for t in template_ids],),
                    ).fetchall()
            except sqlite3.DatabaseError as exc:
                raise StorageError(f"{self.where}: gallery read failed: {exc}") from exc
        return {int(r[0]): int(r[1]) for r in rows}, int(seq[0] if seq else 0)
