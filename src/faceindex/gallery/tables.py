"""The gallery's tables as the store reads and writes them: people, photos, templates.

Split from :mod:`faceindex.gallery.store` by table so each class stays small; the store
composes them and owns the connection. Only :mod:`faceindex.gallery` uses this module.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from faceindex.crypto import KeyMismatchError, KeyRequiredError
from faceindex.db import now
from faceindex.errors import (
    ConflictError,
    EmbeddingModelMismatchError,
    InvalidInputError,
    NotFoundError,
    StorageError,
)
from faceindex.gallery.schema import name_key
from faceindex.gallery.sealing import (
    PhotoLabel,
    Sealer,
    StoredLabel,
    photo_context,
    template_context,
)
from faceindex.gallery.values import (
    json_object,
    like_pattern,
    storable,
    validate_external_id,
    validate_name,
)
from faceindex.pg import Connection
from faceindex.types import BBox, Embedding, FloatArray


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    name: str
    external_id: str | None
    metadata: Mapping[str, Any]
    created_at: str
    updated_at: str
    templates: int
    photos: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "external_id": self.external_id,
            "metadata": dict(self.metadata),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "templates": self.templates,
            "photos": self.photos,
        }


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    id: int
    person_id: int
    photo_id: int | None
    model_id: str
    dim: int
    quality: float | None
    bbox: BBox | None
    encrypted: bool
    created_at: str
    source: str | None
    #: Enrolment flags kept with the template (``matches_other_person:ID`` when enrolled
    #: with ``force`` despite matching another person; see :mod:`~faceindex.gallery.enrolment`).
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VectorSet:
    """Every template vector of one model, for (re)building an index."""

    template_ids: np.ndarray
    person_ids: np.ndarray
    vectors: FloatArray
    last_seq: int


class _Connected:
    """What the table classes share: the connection, its lock, the sealer."""

    _conn: Connection
    _lock: threading.RLock
    sealer: Sealer

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return list(self._conn.execute(sql, params))
            except sqlite3.DatabaseError as exc:
                raise StorageError(f"gallery read failed: {exc}") from exc

    #: Starts a read transaction whose statements all see one snapshot.
    _SNAPSHOT = "BEGIN"
    #: Name search without regard to (ASCII) case: SQLite's LIKE; Postgres says ILIKE.
    _LIKE = "LIKE"
    #: How names sort: by code point, as SQLite's default BINARY collation does (Postgres
    #: sorts by the database's locale unless told ``COLLATE "C"``).
    _BINARY = ""

    def _vector_written(
        self, conn: Connection, template_id: int, vector: FloatArray, key_id: str | None
    ) -> None:
        """Called whenever a template's blob is (re)written: a store that searches vectors
        in the database keeps its plaintext vector column in step (NULL when sealed)."""

    def meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None


class PersonTable(_Connected):
    """Rows of ``persons``."""

    # -- persons ----------------------------------------------------------------------

    _PERSON_SQL = """
        SELECT p.*, (SELECT COUNT(*) FROM templates t WHERE t.person_id = p.id) AS n_templates,
               (SELECT COUNT(*) FROM photos f WHERE f.person_id = p.id) AS n_photos
        FROM persons p
    """

    @staticmethod
    def _person(row: Any) -> Person:
        return Person(
            id=int(row["id"]),
            name=str(row["name"]),
            external_id=row["external_id"],
            metadata=json.loads(row["metadata"]),
            created_at=str(row["created_at"]),
            updated_at=str(row["updated_at"]),
            templates=int(row["n_templates"]),
            photos=int(row["n_photos"]),
        )

    def create_person(
        self,
        conn: Connection,
        name: str,
        *,
        external_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> int:
        """A new person; :class:`ConflictError` if the name (regardless of case) or the
        external id is taken. Checked inside ``conn``'s write transaction, so two writers
        cannot both pass the check."""
        name = validate_name(name)
        external_id = validate_external_id(external_id)
        self._check_free(conn, name, external_id, own_id=None)
        stamp = now()
        try:
            cur = conn.execute(
                "INSERT INTO persons (name, name_key, external_id, metadata, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (name, name_key(name), external_id, json_object(metadata), stamp, stamp),
            )
        except sqlite3.IntegrityError as exc:  # pragma: no cover - _check_free saw it first
            raise ConflictError(f"a person named {name!r} already exists") from exc
        return int(cur.fetchone()[0])

    def _check_free(
        self,
        conn: Connection,
        name: str | None,
        external_id: str | None,
        *,
        own_id: int | None,
    ) -> None:
        """:class:`ConflictError`, in plain words, if another person has this name (in any
        case) or this external id."""
        if name is not None:
            row = conn.execute(
                "SELECT id, name FROM persons WHERE name_key = ? AND id <> ? LIMIT 1",
                (name_key(name), own_id or 0),
            ).fetchone()
            if row is not None:
                same = row["name"] == name
                raise ConflictError(
                    f"a person named {row['name']!r} already exists"
                    + ("" if same else " (names are matched regardless of case)"),
                    person_id=int(row["id"]),
                    name=str(row["name"]),
                )
        if external_id:
            row = conn.execute(
                "SELECT id FROM persons WHERE external_id = ? AND id <> ? LIMIT 1",
                (external_id, own_id or 0),
            ).fetchone()
            if row is not None:
                raise ConflictError(
                    f"another person already has the external id {external_id!r}",
                    person_id=int(row["id"]),
                )

    def person(self, ref: int | str) -> Person:
        """A person by id (int, or a string of digits prefixed with '#') or by name: the
        exact name first, else the one name equal regardless of case (:func:`name_key`)."""
        if isinstance(ref, int):
            rows = self._query(self._PERSON_SQL + " WHERE p.id = ?", (ref,))
        else:
            rows = self._query(self._PERSON_SQL + " WHERE p.name = ?", (ref.strip(),))
            if not rows:
                rows = self._query(
                    self._PERSON_SQL + " WHERE p.name_key = ? ORDER BY p.id", (name_key(ref),)
                )
                _unambiguous(ref, [(int(r["id"]), str(r["name"])) for r in rows])
            if not rows and ref.startswith("#") and ref[1:].isdigit():
                rows = self._query(self._PERSON_SQL + " WHERE p.id = ?", (int(ref[1:]),))
        if not rows:
            raise NotFoundError(f"no person {ref!r} in the gallery", person=str(ref))
        return self._person(rows[0])

    def person_exists(self, conn: Connection, person_id: int) -> bool:
        return (
            conn.execute("SELECT 1 FROM persons WHERE id = ?", (person_id,)).fetchone() is not None
        )

    def find_person_id(self, conn: Connection, name: str) -> int | None:
        """The person a name means (exact, else regardless of case), inside ``conn``."""
        row = conn.execute("SELECT id FROM persons WHERE name = ?", (name.strip(),)).fetchone()
        if row is not None:
            return int(row["id"])
        rows = conn.execute(
            "SELECT id, name FROM persons WHERE name_key = ? ORDER BY id", (name_key(name),)
        ).fetchall()
        _unambiguous(name, [(int(r["id"]), str(r["name"])) for r in rows])
        return int(rows[0]["id"]) if rows else None

    def persons(
        self, *, search: str | None = None, offset: int = 0, limit: int = 100
    ) -> list[Person]:
        if offset < 0 or limit < 0:
            raise InvalidInputError("offset and limit must not be negative")
        if search:
            rows = self._query(
                self._PERSON_SQL
                + f" WHERE p.name {self._LIKE} ? ESCAPE '\\'"
                + f" ORDER BY p.name{self._BINARY} LIMIT ? OFFSET ?",
                (like_pattern(search), limit, offset),
            )
        else:
            rows = self._query(
                self._PERSON_SQL + f" ORDER BY p.name{self._BINARY} LIMIT ? OFFSET ?",
                (limit, offset),
            )
        return [self._person(r) for r in rows]

    def count_persons(self, *, search: str | None = None) -> int:
        """How many people there are (whose name contains ``search``, if given)."""
        if search:
            rows = self._query(
                f"SELECT COUNT(*) AS n FROM persons WHERE name {self._LIKE} ? ESCAPE '\\'",
                (like_pattern(search),),
            )
        else:
            rows = self._query("SELECT COUNT(*) AS n FROM persons")
        return int(rows[0]["n"])

    def names(self, ids: list[int]) -> dict[int, str]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._query(f"SELECT id, name FROM persons WHERE id IN ({marks})", tuple(ids))
        return {int(r["id"]): str(r["name"]) for r in rows}

    def update_person(
        self,
        conn: Connection,
        person_id: int,
        *,
        name: str | None = None,
        external_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        sets, params = ["updated_at = ?"], [now()]
        if name is not None:
            name = validate_name(name)
            sets += ["name = ?", "name_key = ?"]
            params += [name, name_key(name)]
        if external_id is not None:
            external_id = validate_external_id(external_id) or ""
            sets.append("external_id = ?")
            params.append(external_id)
        if metadata is not None:
            sets.append("metadata = ?")
            params.append(json_object(metadata))
        self._check_free(conn, name, external_id, own_id=person_id)
        try:
            cur = conn.execute(
                f"UPDATE persons SET {', '.join(sets)} WHERE id = ?", (*params, person_id)
            )
        except sqlite3.IntegrityError as exc:  # pragma: no cover - _check_free saw it first
            raise ConflictError("another person already has that name or external id") from exc
        if cur.rowcount == 0:
            raise NotFoundError(f"no person #{person_id}")

    def delete_person(self, conn: Connection, person_id: int) -> int:
        """Delete a person with every photo and template (cascade); returns templates removed."""
        n = conn.execute(
            "SELECT COUNT(*) AS n FROM templates WHERE person_id = ?", (person_id,)
        ).fetchone()["n"]
        cur = conn.execute("DELETE FROM persons WHERE id = ?", (person_id,))
        if cur.rowcount == 0:
            raise NotFoundError(f"no person #{person_id}")
        return int(n)


def _unambiguous(ref: str, matches: list[tuple[int, str]]) -> None:
    """:class:`ConflictError` when a name matches several people only regardless of case
    (two such names can predate schema 5; see :mod:`faceindex.gallery.schema`)."""
    if len(matches) > 1:
        listed = ", ".join(f"#{i} {n!r}" for i, n in matches)
        raise ConflictError(
            f"{ref.strip()!r} matches several people whose names differ only in case "
            f"({listed}): give the exact name or the id",
            people=[i for i, _ in matches],
        )


class TemplateTable(_Connected):
    """Rows of ``photos``, ``templates`` and ``template_log`` (vectors, kept photos and,
    with a key, photo digests and source names sealed: see :mod:`~faceindex.gallery.sealing`)."""

    def _bind_model(self, conn: Connection, model_id: str, dim: int) -> None:
        row = conn.execute("SELECT value FROM meta WHERE key = 'model_id'").fetchone()
        if row is None:
            conn.execute("INSERT INTO meta (key, value) VALUES ('model_id', ?)", (model_id,))
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('dim', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(dim),),
            )
        elif row["value"] != model_id:
            raise EmbeddingModelMismatchError(
                f"this gallery holds {row['value']!r} templates; {model_id!r} templates "
                "cannot be mixed in (re-embed the gallery to change models)",
                gallery_model=row["value"],
                model=model_id,
            )

    # -- photos and templates ---------------------------------------------------------

    def photo_owners(self, sha256: str) -> list[int]:
        """The people who enrolled the photo of this digest (found by its lookup with a
        key, by the digest itself in the clear)."""
        lookup, key_id = self.sealer.lookup(sha256), self.sealer.key_id
        rows = self._query(
            "SELECT person_id FROM photos WHERE (sha256 = ? AND label_key_id IS NULL)"
            " OR (sha256 = ? AND label_key_id = ?)",
            (sha256, lookup, key_id),
        )
        return [int(r["person_id"]) for r in rows]

    def add_photo(
        self,
        conn: Connection,
        person_id: int,
        sha256: str,
        *,
        source: str | None,
        data: bytes | None,
    ) -> int:
        """Record a photo: its digest and source (sealed, with a lookup for the digest,
        when the store has a key) and, when given, its bytes (sealed likewise)."""
        key_id = None
        if data is not None:
            data, key_id = self.sealer.seal(data, photo_context(person_id, sha256))
        keyed = self.sealer.key is not None
        try:
            cur = conn.execute(
                "INSERT INTO photos (person_id, sha256, source, data, data_key_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    person_id,
                    self.sealer.lookup(sha256),
                    None if keyed else storable(source),
                    data,
                    key_id,
                    now(),
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise ConflictError(f"photo {sha256[:12]} is already enrolled for this person") from exc
        photo_id = int(cur.fetchone()[0])
        if keyed:
            self._write_label(conn, self.sealer, photo_id, PhotoLabel(sha256, storable(source)))
        return photo_id

    def _write_label(
        self, conn: Connection, sealer: Sealer, photo_id: int, label: PhotoLabel
    ) -> None:
        """Store ``label`` in photo row ``photo_id`` as ``sealer`` records it."""
        stored = sealer.seal_label(photo_id, label)
        conn.execute(
            "UPDATE photos SET sha256 = ?, source = ?, label = ?, label_key_id = ? WHERE id = ?",
            (stored.lookup, stored.source, stored.sealed, stored.key_id, photo_id),
        )

    def _label(self, row: Any, prefix: str = "") -> PhotoLabel:
        """The digest and source of a photo row (columns named ``prefix`` + the column)."""
        sealed = row[prefix + "label"]
        stored = StoredLabel(
            str(row[prefix + "sha256"]),
            row[prefix + "source"],
            None if sealed is None else bytes(sealed),
            row[prefix + "label_key_id"],
        )
        return self.sealer.open_label(int(row[prefix + "id"]), stored)

    def photo_labels(self, person_id: int) -> dict[int, PhotoLabel]:
        """Digest and source of each photo of a person, by photo id (needs the key when
        they are sealed)."""
        rows = self._query("SELECT * FROM photos WHERE person_id = ?", (person_id,))
        return {int(r["id"]): self._label(r) for r in rows}

    def photo_bytes(self, photo_id: int) -> bytes | None:
        rows = self._query("SELECT * FROM photos WHERE id = ?", (photo_id,))
        if not rows:
            raise NotFoundError(f"no photo #{photo_id}")
        row = rows[0]
        if row["data"] is None:
            return None
        digest = self._label(row).sha256
        return self.sealer.open(
            bytes(row["data"]), row["data_key_id"], photo_context(row["person_id"], digest)
        )

    def add_template(
        self,
        conn: Connection,
        person_id: int,
        embedding: Embedding,
        *,
        photo_id: int | None,
        quality: float | None,
        bbox: BBox | None,
        flags: tuple[str, ...] = (),
    ) -> int:
        self._bind_model(conn, embedding.model_id, embedding.dim)
        cur = conn.execute(
            "INSERT INTO templates (person_id, photo_id, model_id, dim, vector, key_id, quality,"
            " bbox, flags, created_at) VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?) RETURNING id",
            (
                person_id,
                photo_id,
                embedding.model_id,
                embedding.dim,
                b"\x00",  # the sealed blob needs the row's id: written just below
                quality,
                json.dumps(bbox.as_list()) if bbox is not None else None,
                json.dumps(list(flags)),
                now(),
            ),
        )
        template_id = int(cur.fetchone()[0])
        blob, key_id = self._seal(self.sealer, template_id, embedding.model_id, embedding.vector)
        conn.execute(
            "UPDATE templates SET vector = ?, key_id = ? WHERE id = ?", (blob, key_id, template_id)
        )
        self._vector_written(conn, template_id, embedding.vector, key_id)
        return template_id

    def templates(self, person_id: int) -> list[TemplateInfo]:
        rows = self._query(
            "SELECT t.*, f.id AS f_id, f.sha256 AS f_sha256, f.source AS f_source,"
            " f.label AS f_label, f.label_key_id AS f_label_key_id"
            " FROM templates t LEFT JOIN photos f ON f.id = t.photo_id"
            " WHERE t.person_id = ? ORDER BY t.id",
            (person_id,),
        )
        return [
            TemplateInfo(
                id=int(r["id"]),
                person_id=int(r["person_id"]),
                photo_id=r["photo_id"],
                model_id=str(r["model_id"]),
                dim=int(r["dim"]),
                quality=r["quality"],
                bbox=BBox(*json.loads(r["bbox"])) if r["bbox"] else None,
                encrypted=r["key_id"] is not None,
                created_at=str(r["created_at"]),
                source=self._source(r),
                flags=tuple(json.loads(r["flags"] or "[]")),
            )
            for r in rows
        ]

    def _source(self, row: Any) -> str | None:
        """A template row's photo source name; None without a photo, or when it is sealed
        and the key is missing or another (listing people needs no key; reading the
        vectors or kept photos still says which key is needed)."""
        if row["f_id"] is None:
            return None
        try:
            return self._label(row, "f_").source
        except (KeyRequiredError, KeyMismatchError):
            return None

    def move_person(self, conn: Connection, from_id: int, into_id: int) -> tuple[int, int]:
        """Move every photo and template of ``from_id`` to ``into_id`` (a merge), inside
        ``conn``'s transaction; returns (templates, photos) moved. Kept photos are re-sealed
        for their new owner (a photo's seal is bound to its person); a photo both people
        enrolled is kept once, with the templates of both."""
        photos = 0
        rows = conn.execute("SELECT * FROM photos WHERE person_id = ?", (from_id,)).fetchall()
        for row in rows:
            twin = conn.execute(
                "SELECT id FROM photos WHERE person_id = ? AND sha256 = ?", (into_id, row["sha256"])
            ).fetchone()
            if twin is not None:
                conn.execute(
                    "UPDATE templates SET photo_id = ? WHERE photo_id = ?", (twin["id"], row["id"])
                )
                conn.execute("DELETE FROM photos WHERE id = ?", (row["id"],))
                continue
            data, key_id = row["data"], row["data_key_id"]
            if data is not None:
                digest = self._label(row).sha256
                plain = self.sealer.open(bytes(data), key_id, photo_context(from_id, digest))
                data, key_id = self.sealer.seal(plain, photo_context(into_id, digest))
            conn.execute(
                "UPDATE photos SET person_id = ?, data = ?, data_key_id = ? WHERE id = ?",
                (into_id, data, key_id, row["id"]),
            )
            photos += 1
        cur = conn.execute(
            "UPDATE templates SET person_id = ? WHERE person_id = ?", (into_id, from_id)
        )
        return int(cur.rowcount), photos

    def count_templates(self) -> int:
        return int(self._query("SELECT COUNT(*) AS n FROM templates")[0]["n"])

    def kept_photo_ids(self, person_id: int) -> set[int]:
        """Ids of the person's photos whose bytes are kept (``keep_photos``)."""
        rows = self._query(
            "SELECT id FROM photos WHERE person_id = ? AND data IS NOT NULL", (person_id,)
        )
        return {int(r["id"]) for r in rows}

    def delete_template(self, conn: Connection, template_id: int) -> int:
        """Delete a template and, if it was its photo's last, the photo; returns the owner."""
        row = conn.execute(
            "SELECT person_id, photo_id FROM templates WHERE id = ?", (template_id,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no template #{template_id}")
        conn.execute("DELETE FROM templates WHERE id = ?", (template_id,))
        if row["photo_id"] is not None:
            conn.execute(
                "DELETE FROM photos WHERE id = ? AND NOT EXISTS "
                "(SELECT 1 FROM templates WHERE photo_id = ?)",
                (row["photo_id"], row["photo_id"]),
            )
        return int(row["person_id"])

    def template_sources(self) -> list[tuple[int, int, int | None, bool]]:
        """(template id, person id, photo id, photo bytes kept?) for every template."""
        rows = self._query(
            "SELECT t.id, t.person_id, t.photo_id, f.data IS NOT NULL AS kept FROM templates t"
            " LEFT JOIN photos f ON f.id = t.photo_id ORDER BY t.id"
        )
        return [(int(r[0]), int(r[1]), r[2], bool(r[3])) for r in rows]

    def delete_all_templates(self, conn: Connection) -> int:
        """Delete every template (model migration, inside its transaction)."""
        return int(conn.execute("DELETE FROM templates").rowcount)

    def unbind_model(self, conn: Connection) -> None:
        """Forget the gallery's model (only once every template is gone)."""
        left = conn.execute("SELECT COUNT(*) FROM templates").fetchone()[0]
        if left:
            raise ConflictError("cannot change the gallery's model while templates remain")
        conn.execute("DELETE FROM meta WHERE key IN ('model_id', 'dim')")

    # -- vectors ----------------------------------------------------------------------

    def _seal(
        self, sealer: Sealer, template_id: int, model_id: str, vector: FloatArray
    ) -> tuple[bytes, str | None]:
        raw = np.ascontiguousarray(vector, dtype="<f4").tobytes()
        return sealer.seal(raw, template_context(template_id, model_id))

    def _open(self, row: Any) -> FloatArray:
        blob = self.sealer.open(
            bytes(row["vector"]), row["key_id"], template_context(row["id"], row["model_id"])
        )
        vec = np.frombuffer(blob, dtype="<f4")
        if vec.shape[0] != int(row["dim"]):
            raise StorageError(f"template #{row['id']} is damaged (wrong length)")
        return vec.astype(np.float32)

    def vectors(self, template_ids: list[int] | None = None) -> VectorSet:
        """Template vectors (all, or the given ids), decrypted, with their owners."""
        with self._lock:
            # One read transaction, so the vectors and last_seq are from the same snapshot.
            self._conn.execute(self._SNAPSHOT)
            try:
                seq_row = self._conn.execute("SELECT MAX(seq) AS s FROM template_log").fetchone()
                if template_ids is None:
                    rows = list(self._conn.execute("SELECT * FROM templates ORDER BY id"))
                else:
                    rows = []
                    for start in range(0, len(template_ids), 500):
                        chunk = template_ids[start : start + 500]
                        marks = ",".join("?" * len(chunk))
                        rows += list(
                            self._conn.execute(
                                f"SELECT * FROM templates WHERE id IN ({marks})", tuple(chunk)
                            )
                        )
            finally:
                self._conn.execute("COMMIT")
        dim = int(self.meta("dim") or 0)
        matrix = np.zeros((len(rows), dim), dtype=np.float32)
        for i, r in enumerate(rows):
            matrix[i] = self._open(r)
        return VectorSet(
            template_ids=np.array([int(r["id"]) for r in rows], dtype=np.int64),
            person_ids=np.array([int(r["person_id"]) for r in rows], dtype=np.int64),
            vectors=matrix,
            last_seq=int(seq_row["s"] or 0),
        )

    def changes_since(self, seq: int) -> tuple[list[int], list[int], int]:
        """Template ids added and removed after log position ``seq``, and the new position."""
        rows = self._query(
            "SELECT seq, template_id, op FROM template_log WHERE seq > ? ORDER BY seq", (seq,)
        )
        state: dict[int, str] = {}
        for r in rows:
            state[int(r["template_id"])] = str(r["op"])
        added = [t for t, op in state.items() if op == "add"]
        removed = [t for t, op in state.items() if op == "remove"]
        last = int(rows[-1]["seq"]) if rows else seq
        return added, removed, last
