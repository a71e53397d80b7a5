"""The photo library's tables, in the gallery's file, with their own migrations.

``library_photos``: one row per scanned file (path, size, mtime, SHA-256, status, faces):
what makes a re-scan incremental. ``library_faces``: every face found (photo, box,
quality, whether it may seed a cluster, the embedding sealed with the gallery's template
key, the person it is, the cluster it is in). ``library_clusters``: candidate people.
``library_rejections``: "not this person" (a face taken out of a cluster never rejoins it).

Like :mod:`faceindex.apikeys`, the tables are a component of their own (version kept in
``schema_versions`` under ``library``), and :class:`LibraryStore` holds its own connection
to the file, opened the same way as the gallery's (:func:`faceindex.db.connect`); every
write is one ``BEGIN IMMEDIATE`` transaction. The gallery knows nothing of these tables:
triggers (migration 2) keep them in step when the gallery erases or merges people.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from faceindex.db import connect, immediate_transaction, migrate, now
from faceindex.errors import NotFoundError, StorageError
from faceindex.gallery.sealing import Sealer
from faceindex.types import BBox

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS library_photos (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        status TEXT NOT NULL,
        faces INTEGER NOT NULL DEFAULT 0,
        scanned_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS library_clusters (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS library_faces (
        id INTEGER PRIMARY KEY,
        photo_id INTEGER NOT NULL REFERENCES library_photos(id) ON DELETE CASCADE,
        face_index INTEGER NOT NULL,
        bbox TEXT NOT NULL,
        quality REAL,
        seeds INTEGER NOT NULL,
        model_id TEXT NOT NULL,
        dim INTEGER NOT NULL,
        vector BLOB NOT NULL,
        key_id TEXT,
        person_id INTEGER,
        similarity REAL,
        cluster_id INTEGER REFERENCES library_clusters(id) ON DELETE SET NULL,
        placed INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS library_faces_photo ON library_faces(photo_id);
    CREATE INDEX IF NOT EXISTS library_faces_cluster ON library_faces(cluster_id);
    CREATE INDEX IF NOT EXISTS library_faces_person ON library_faces(person_id);
    CREATE TABLE IF NOT EXISTS library_rejections (
        face_id INTEGER NOT NULL REFERENCES library_faces(id) ON DELETE CASCADE,
        cluster_id INTEGER NOT NULL,
        PRIMARY KEY (face_id, cluster_id)
    );
    """,
    # 2: the library follows the gallery's people without the gallery knowing of it.
    # Erasing a person erases the library's faces recognised as them (their embeddings are
    # that person's biometric data: the erasure guarantee covers them, and secure_delete
    # zeroes the rows); merging a person moves their templates, and their library faces
    # follow. Templates change owner only in a merge (all of a person's at once).
    """
    CREATE TRIGGER IF NOT EXISTS library_faces_erased_with_person
    AFTER DELETE ON persons
    BEGIN
        DELETE FROM library_faces WHERE person_id = OLD.id;
    END;
    CREATE TRIGGER IF NOT EXISTS library_faces_follow_merge
    AFTER UPDATE OF person_id ON templates
    WHEN OLD.person_id IS NOT NEW.person_id
    BEGIN
        UPDATE library_faces SET person_id = NEW.person_id WHERE person_id = OLD.person_id;
    END;
    """,
)

#: ``library_photos.status`` of a photo read and analysed (else an error code).
OK = "ok"


def face_context(face_id: int, model_id: str) -> bytes:
    """What a sealed face vector is bound to (its row), like a template's."""
    return f"library_face:{face_id}:{model_id}".encode()


@dataclass(frozen=True, slots=True)
class PhotoRecord:
    id: int
    path: str
    size: int
    mtime_ns: int
    sha256: str
    status: str
    faces: int


@dataclass(frozen=True, slots=True)
class NewFace:
    """A face to store: where, how good, its embedding, and whom the gallery saw in it."""

    bbox: BBox
    quality: float | None
    seeds: bool
    vector: npt.NDArray[np.float32]
    model_id: str
    person_id: int | None = None
    similarity: float | None = None


@dataclass(frozen=True, slots=True)
class FaceRecord:
    id: int
    photo_id: int
    path: str
    bbox: BBox
    quality: float | None
    seeds: bool
    person_id: int | None
    cluster_id: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "bbox": [round(v, 1) for v in self.bbox.as_list()],
        }


class LibraryStore:
    """The library tables of one gallery file; thread-safe; vectors sealed by ``sealer``."""

    def __init__(self, path: str | Path, *, sealer: Sealer | None = None) -> None:
        self.path = Path(path)
        self.sealer = sealer or Sealer()
        self._lock = threading.RLock()
        self._conn = connect(self.path)
        try:
            migrate(self._conn, MIGRATIONS, component="library")
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StorageError(f"{self.path}: cannot set up the library tables ({exc})") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with immediate_transaction(self._conn, self._lock) as conn:
            yield conn

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return list(self._conn.execute(sql, params))
            except sqlite3.DatabaseError as exc:
                raise StorageError(f"library read failed: {exc}") from exc

    # -- photos -----------------------------------------------------------------------

    def photos(self) -> dict[str, PhotoRecord]:
        """Every scanned photo by path (one query: what a re-scan compares with)."""
        rows = self._query(
            "SELECT id, path, size, mtime_ns, sha256, status, faces FROM library_photos"
        )
        return {
            str(r["path"]): PhotoRecord(
                int(r["id"]),
                str(r["path"]),
                int(r["size"]),
                int(r["mtime_ns"]),
                str(r["sha256"]),
                str(r["status"]),
                int(r["faces"]),
            )
            for r in rows
        }

    def photo(self, photo_id: int) -> PhotoRecord:
        rows = self._query(
            "SELECT id, path, size, mtime_ns, sha256, status, faces FROM library_photos"
            " WHERE id = ?",
            (photo_id,),
        )
        if not rows:
            raise NotFoundError(f"no scanned photo #{photo_id}", photo=photo_id)
        r = rows[0]
        return PhotoRecord(
            int(r["id"]),
            str(r["path"]),
            int(r["size"]),
            int(r["mtime_ns"]),
            str(r["sha256"]),
            str(r["status"]),
            int(r["faces"]),
        )

    def touch_photo(self, photo_id: int, size: int, mtime_ns: int) -> None:
        """A file whose bytes are unchanged but whose size/mtime moved (copied, touched)."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE library_photos SET size = ?, mtime_ns = ? WHERE id = ?",
                (size, mtime_ns, photo_id),
            )

    def save_photo(
        self,
        path: str,
        *,
        size: int,
        mtime_ns: int,
        sha256: str,
        status: str,
        faces: Sequence[NewFace],
    ) -> int:
        """Record one scanned photo and its faces in one transaction (replacing what was
        stored for that path: a changed file's old faces go)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM library_photos WHERE path = ?", (path,))
            cur = conn.execute(
                "INSERT INTO library_photos (path, size, mtime_ns, sha256, status, faces,"
                " scanned_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (path, size, mtime_ns, sha256, status, len(faces), now()),
            )
            photo_id = int(cur.lastrowid or 0)
            for index, face in enumerate(faces):
                self._insert_face(conn, photo_id, index, face)
        return photo_id

    def _insert_face(
        self, conn: sqlite3.Connection, photo_id: int, index: int, face: NewFace
    ) -> int:
        vec = np.ascontiguousarray(face.vector, dtype="<f4")
        cur = conn.execute(
            "INSERT INTO library_faces (photo_id, face_index, bbox, quality, seeds, model_id,"
            " dim, vector, key_id, person_id, similarity, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, zeroblob(1), NULL, ?, ?, ?)",
            (
                photo_id,
                index,
                json.dumps([round(v, 2) for v in face.bbox.as_list()]),
                face.quality,
                int(face.seeds),
                face.model_id,
                int(vec.shape[0]),
                face.person_id,
                face.similarity,
                now(),
            ),
        )
        face_id = int(cur.lastrowid or 0)
        blob, key_id = self.sealer.seal(vec.tobytes(), face_context(face_id, face.model_id))
        conn.execute(
            "UPDATE library_faces SET vector = ?, key_id = ? WHERE id = ?",
            (blob, key_id, face_id),
        )
        return face_id

    def remove_photos(self, paths: Iterable[str]) -> int:
        """Forget photos (files gone from the disk); their faces go with them."""
        gone = list(paths)
        with self.transaction() as conn:
            for path in gone:
                conn.execute("DELETE FROM library_photos WHERE path = ?", (path,))
        return len(gone)

    # -- faces ------------------------------------------------------------------------

    _FACE_SQL = (
        "SELECT f.id, f.photo_id, p.path, f.bbox, f.quality, f.seeds, f.person_id,"
        " f.cluster_id FROM library_faces f JOIN library_photos p ON p.id = f.photo_id"
    )

    @staticmethod
    def _face(row: sqlite3.Row) -> FaceRecord:
        return FaceRecord(
            id=int(row["id"]),
            photo_id=int(row["photo_id"]),
            path=str(row["path"]),
            bbox=BBox(*json.loads(row["bbox"])),
            quality=row["quality"],
            seeds=bool(row["seeds"]),
            person_id=row["person_id"],
            cluster_id=row["cluster_id"],
        )

    def faces(
        self, where: str = "1", params: tuple[Any, ...] = (), *, limit: int = -1
    ) -> list[FaceRecord]:
        """Faces matching a condition on ``f`` (library_faces) and ``p`` (library_photos),
        by photo path and face order (largest first)."""
        rows = self._query(
            f"{self._FACE_SQL} WHERE {where} ORDER BY p.path, f.face_index LIMIT ?",
            (*params, limit),
        )
        return [self._face(r) for r in rows]

    def face(self, face_id: int) -> FaceRecord:
        found = self.faces("f.id = ?", (face_id,))
        if not found:
            raise NotFoundError(f"no library face #{face_id}", face=face_id)
        return found[0]

    def vectors(self, face_ids: Sequence[int]) -> tuple[npt.NDArray[np.float32], str | None]:
        """The faces' embeddings (unsealed), in the order given, and their model."""
        rows: dict[int, sqlite3.Row] = {}
        ids = list(face_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            sql = "SELECT id, model_id, dim, vector, key_id FROM library_faces WHERE id IN"
            for r in self._query(f"{sql} ({marks})", tuple(chunk)):
                rows[int(r["id"])] = r
        if not ids:
            return np.zeros((0, 0), dtype=np.float32), None
        dim = int(next(iter(rows.values()))["dim"])
        out = np.zeros((len(ids), dim), dtype=np.float32)
        model = None
        for i, face_id in enumerate(ids):
            r = rows[face_id]
            model = str(r["model_id"])
            plain = self.sealer.open(bytes(r["vector"]), r["key_id"], face_context(face_id, model))
            out[i] = np.frombuffer(plain, dtype="<f4")
        return out, model

    def place(
        self,
        joined: Iterable[tuple[int, int]],
        groups: Sequence[Sequence[int]],
        considered: Iterable[int],
    ) -> list[int]:
        """One clustering step in one transaction: (face id, cluster id) pairs joined, one
        new cluster per group of face ids, and the faces ``considered`` marked as placed
        (whether they found a cluster or not). Returns the new clusters' ids."""
        made = []
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE library_faces SET placed = 1 WHERE id = ?", [(f,) for f in considered]
            )
            conn.executemany(
                "UPDATE library_faces SET cluster_id = ? WHERE id = ?",
                [(c, f) for f, c in joined],
            )
            for group in groups:
                cur = conn.execute("INSERT INTO library_clusters (created_at) VALUES (?)", (now(),))
                cid = int(cur.lastrowid or 0)
                conn.executemany(
                    "UPDATE library_faces SET cluster_id = ? WHERE id = ?",
                    [(cid, f) for f in group],
                )
                made.append(cid)
        return made

    def cluster_ids(self) -> list[int]:
        return [int(r[0]) for r in self._query("SELECT id FROM library_clusters ORDER BY id")]

    def rejections(self) -> dict[int, frozenset[int]]:
        """Face id -> the clusters it was taken out of."""
        out: dict[int, set[int]] = {}
        for r in self._query("SELECT face_id, cluster_id FROM library_rejections"):
            out.setdefault(int(r[0]), set()).add(int(r[1]))
        return {k: frozenset(v) for k, v in out.items()}

    def photo_paths_of(self, person_ids: Sequence[int]) -> list[str]:
        """Paths of the photos showing every one of ``person_ids``."""
        if not person_ids:
            return []
        marks = ",".join("?" * len(person_ids))
        rows = self._query(
            "SELECT p.path FROM library_photos p JOIN library_faces f ON f.photo_id = p.id"
            f" WHERE f.person_id IN ({marks}) GROUP BY p.id"
            " HAVING COUNT(DISTINCT f.person_id) = ? ORDER BY p.path",
            (*person_ids, len(set(person_ids))),
        )
        return [str(r[0]) for r in rows]

    def models(self) -> set[str]:
        """The embedding models of the stored faces."""
        return {str(r[0]) for r in self._query("SELECT DISTINCT model_id FROM library_faces")}

    def counts(self) -> dict[str, int]:
        row = self._query(
            "SELECT (SELECT COUNT(*) FROM library_photos) AS photos,"
            " (SELECT COUNT(*) FROM library_faces) AS faces,"
            " (SELECT COUNT(*) FROM library_faces WHERE person_id IS NOT NULL) AS recognised,"
            " (SELECT COUNT(*) FROM library_clusters) AS clusters"
        )[0]
        return {k: int(row[k]) for k in ("photos", "faces", "recognised", "clusters")}

    def execute(self, conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> int:
        """One statement inside ``conn``'s transaction; returns the rows changed."""
        return int(conn.execute(sql, params).rowcount)


def reseal_library(path: str | Path, old: Sealer, new: Sealer) -> int:
    """Re-seal every library face vector of the gallery file ``path`` from ``old`` to
    ``new`` (``encryption-key rotate``); returns how many. A file without library tables
    is left untouched (0). One transaction: all of them move, or none."""
    with contextlib.closing(sqlite3.connect(path)) as probe:
        found = probe.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'library_faces'"
        ).fetchone()
    if found is None:
        return 0
    store = LibraryStore(path, sealer=new)
    try:
        with store.transaction() as conn:
            rows = conn.execute("SELECT id, model_id, vector, key_id FROM library_faces").fetchall()
            for face_id, model_id, vector, key_id in rows:
                context = face_context(int(face_id), str(model_id))
                blob, new_id = new.seal(old.open(bytes(vector), key_id, context), context)
                conn.execute(
                    "UPDATE library_faces SET vector = ?, key_id = ? WHERE id = ?",
                    (blob, new_id, face_id),
                )
        return len(rows)
    finally:
        store.close()
