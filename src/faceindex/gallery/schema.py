"""The gallery's SQLite schema as numbered migrations (``PRAGMA user_version``).

A migration runs inside one ``BEGIN IMMEDIATE`` transaction together with the version bump,
so a crash mid-migration leaves the previous version intact. A database written by a newer
faceindex (higher version than known here) is refused rather than guessed at.

Layout:
- ``persons``: one row per person; ``name`` is unique (the CLI addresses people by name),
  ``external_id`` optionally links to another system, ``metadata`` is a JSON object.
- ``photos``: one row per enrolled source photo: its SHA-256 (duplicate detection and
  resumable bulk enrolment; with a key, a keyed lookup of it: migration 6), its source
  name and, only when the user asks to keep photos, its bytes.
- ``templates``: one embedding per accepted face, as float32 little-endian bytes or, with
  a key, AES-GCM ciphertext with the key's id; the model id and dimension travel with it.
- ``template_log``: an append-only list of template additions and removals (ids only, no
  biometric data): vector indexes are caches that catch up by replaying it.
- ``audit``: who did what, when, with what decision (ids, never names or vectors).
- ``meta``: key/value settings such as the embedding model the gallery is bound to.
- ``pending_erasures``: erasures whose WAL could not be truncated yet (a reader held an old
  snapshot); written in the deleting transaction and cleared once the WAL is truncated.
- ids of persons, photos and templates are ``AUTOINCREMENT`` (migration 3): SQLite never
  hands a deleted row's id to a new row, so a retried delete cannot erase someone else
  and the audit log's ids always name one person.
- migration 5: ``persons.name_key``, the name as people are matched (Unicode NFKC,
  case-folded: :func:`name_key`), so "barack obama" finds "Barack Obama" and no second
  person can be given a name differing only in case. Uniqueness of the key is checked by the
  store inside each write transaction (which holds SQLite's write lock), not by a UNIQUE
  index: galleries written before version 5 may already hold two people whose names differ
  only in case, and the migration must not fail on them. Those are kept as they are
  (addressed by their exact name or id; ``merge`` folds one into the other). It also adds
  ``templates.flags``, a JSON list of the enrolment flags of each template
  (``matches_other_person:ID`` on a face enrolled with ``force``), so such faces can be
  listed and removed; and logs a template moved to another person (``merge``) as removed
  and added again, so vector indexes replaying ``template_log`` learn its new owner.
- migration 6: ``photos.label`` and ``photos.label_key_id``. In a gallery with a key, a
  photo's SHA-256 and source name are sealed together in ``label`` (AES-GCM, key id in
  ``label_key_id``), ``photos.sha256`` holds a keyed lookup (HMAC of the digest under a
  subkey of the key) instead of the digest, and ``photos.source`` is NULL; without a key
  both new columns are NULL and ``sha256``/``source`` are plain, as before (see
  :mod:`faceindex.gallery.sealing`). The migration only adds the (nullable) columns: the
  rows of an existing gallery stay plain until it is opened with a key, which converts them
  at once (:meth:`~faceindex.gallery.store.SqliteStore.seal_clear`); migrations cannot, as
  they never see the key.
- Other components keep tables in the same file (API keys, the photo library). The photo
  library's triggers fire on ``persons`` deletes and ``templates.person_id`` updates (see
  :mod:`faceindex.library.store`): a future migration that rebuilds either table (which
  drops its triggers) must re-create them.
- migration 2 created the REST API's ``api_keys`` table in releases before 0.2; that table
  now belongs to :mod:`faceindex.apikeys` and its own migrations, so the step is a no-op
  here (kept so that version numbers stay stable for existing files).
"""

from __future__ import annotations

import sqlite3
import unicodedata

from faceindex.db import migrate as run_migrations

#: The SQL function migration 5 computes ``persons.name_key`` with (see :func:`name_key`).
NAME_KEY_FUNCTION = "faceindex_name_key"


def name_key(name: str) -> str:
    """How names are compared: stripped, NFKC-normalised and case-folded (Unicode-wide,
    unlike SQLite's ASCII-only ``NOCASE``): "ÉLISE" and "élise" are one name."""
    return unicodedata.normalize("NFKC", name.strip()).casefold()


MIGRATIONS: tuple[str, ...] = (
    # 1: initial schema
    """
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE persons (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        external_id TEXT UNIQUE,
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE photos (
        id INTEGER PRIMARY KEY,
        person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
        sha256 TEXT NOT NULL,
        source TEXT,
        data BLOB,
        data_key_id TEXT,
        created_at TEXT NOT NULL,
        UNIQUE (person_id, sha256)
    );
    CREATE INDEX photos_sha256 ON photos(sha256);
    CREATE TABLE templates (
        id INTEGER PRIMARY KEY,
        person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
        photo_id INTEGER REFERENCES photos(id) ON DELETE CASCADE,
        model_id TEXT NOT NULL,
        dim INTEGER NOT NULL CHECK (dim > 0),
        vector BLOB NOT NULL,
        key_id TEXT,
        quality REAL,
        bbox TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX templates_person ON templates(person_id);
    CREATE INDEX templates_photo ON templates(photo_id);
    CREATE TABLE template_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        template_id INTEGER NOT NULL,
        op TEXT NOT NULL CHECK (op IN ('add', 'remove'))
    );
    CREATE TRIGGER templates_logged_add AFTER INSERT ON templates BEGIN
        INSERT INTO template_log (template_id, op) VALUES (NEW.id, 'add');
    END;
    CREATE TRIGGER templates_logged_remove AFTER DELETE ON templates BEGIN
        INSERT INTO template_log (template_id, op) VALUES (OLD.id, 'remove');
    END;
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        person_id INTEGER,
        decision TEXT,
        details TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX audit_at ON audit(at);
    CREATE INDEX audit_action ON audit(action);
    """,
    # 2: formerly the API key table; now created by faceindex.apikeys' own migrations
    "SELECT 1;",
    # 3: ids are never reused. SQLite's table rebuild (create new, copy, drop, rename; run
    # with foreign keys off by the runner, see REBUILDS) keeps every row, id, reference,
    # index and trigger; sqlite_sequence is then seeded with the highest id still visible
    # anywhere (the table, the audit log, the template log), so no new row takes it.
    """
    CREATE TABLE persons_new (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        external_id TEXT UNIQUE,
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    INSERT INTO persons_new (id, name, external_id, metadata, created_at, updated_at)
        SELECT id, name, external_id, metadata, created_at, updated_at FROM persons;
    DROP TABLE persons;
    ALTER TABLE persons_new RENAME TO persons;
    CREATE TABLE photos_new (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
        sha256 TEXT NOT NULL,
        source TEXT,
        data BLOB,
        data_key_id TEXT,
        created_at TEXT NOT NULL,
        UNIQUE (person_id, sha256)
    );
    INSERT INTO photos_new (id, person_id, sha256, source, data, data_key_id, created_at)
        SELECT id, person_id, sha256, source, data, data_key_id, created_at FROM photos;
    DROP TABLE photos;
    ALTER TABLE photos_new RENAME TO photos;
    CREATE INDEX photos_sha256 ON photos(sha256);
    CREATE TABLE templates_new (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
        photo_id INTEGER REFERENCES photos(id) ON DELETE CASCADE,
        model_id TEXT NOT NULL,
        dim INTEGER NOT NULL CHECK (dim > 0),
        vector BLOB NOT NULL,
        key_id TEXT,
        quality REAL,
        bbox TEXT,
        created_at TEXT NOT NULL
    );
    INSERT INTO templates_new
        (id, person_id, photo_id, model_id, dim, vector, key_id, quality, bbox, created_at)
        SELECT id, person_id, photo_id, model_id, dim, vector, key_id, quality, bbox, created_at
        FROM templates;
    DROP TABLE templates;
    ALTER TABLE templates_new RENAME TO templates;
    CREATE INDEX templates_person ON templates(person_id);
    CREATE INDEX templates_photo ON templates(photo_id);
    CREATE TRIGGER templates_logged_add AFTER INSERT ON templates BEGIN
        INSERT INTO template_log (template_id, op) VALUES (NEW.id, 'add');
    END;
    CREATE TRIGGER templates_logged_remove AFTER DELETE ON templates BEGIN
        INSERT INTO template_log (template_id, op) VALUES (OLD.id, 'remove');
    END;
    DELETE FROM sqlite_sequence WHERE name IN ('persons', 'photos', 'templates');
    INSERT INTO sqlite_sequence (name, seq) VALUES ('persons', MAX(
        COALESCE((SELECT MAX(id) FROM persons), 0),
        COALESCE((SELECT MAX(person_id) FROM audit), 0),
        COALESCE((SELECT MAX(person_id) FROM photos), 0),
        COALESCE((SELECT MAX(person_id) FROM templates), 0)
    ));
    INSERT INTO sqlite_sequence (name, seq) VALUES ('photos', MAX(
        COALESCE((SELECT MAX(id) FROM photos), 0),
        COALESCE((SELECT MAX(photo_id) FROM templates), 0),
        COALESCE((SELECT MAX(CAST(json_extract(details, '$.photo_id') AS INTEGER)) FROM audit
                  WHERE json_valid(details)), 0)
    ));
    INSERT INTO sqlite_sequence (name, seq) VALUES ('templates', MAX(
        COALESCE((SELECT MAX(id) FROM templates), 0),
        COALESCE((SELECT MAX(template_id) FROM template_log), 0),
        COALESCE((SELECT MAX(CAST(json_extract(details, '$.template_id') AS INTEGER)) FROM audit
                  WHERE json_valid(details)), 0)
    ));
    """,
    # 4: erasures waiting for the WAL to be truncated (see SqliteStore.finish_erasures)
    """
    CREATE TABLE pending_erasures (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        action TEXT NOT NULL,
        person_id INTEGER,
        template_id INTEGER
    );
    """,
    # 5: names compared without regard to case; enrolment flags kept per template
    f"""
    ALTER TABLE persons ADD COLUMN name_key TEXT;
    UPDATE persons SET name_key = {NAME_KEY_FUNCTION}(name);
    CREATE INDEX persons_name_key ON persons(name_key);
    ALTER TABLE templates ADD COLUMN flags TEXT NOT NULL DEFAULT '[]';
    CREATE TRIGGER templates_logged_move AFTER UPDATE OF person_id ON templates BEGIN
        INSERT INTO template_log (template_id, op) VALUES (OLD.id, 'remove');
        INSERT INTO template_log (template_id, op) VALUES (NEW.id, 'add');
    END;
    """,
    # 6: photo hashes and source names sealed in galleries with a key
    """
    ALTER TABLE photos ADD COLUMN label BLOB;
    ALTER TABLE photos ADD COLUMN label_key_id TEXT;
    """,
)

#: The migrations that rebuild tables: run with foreign keys off (see faceindex.db.migrate).
REBUILDS: frozenset[int] = frozenset({3})

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the gallery tables to :data:`SCHEMA_VERSION`; returns the version found before."""
    conn.create_function(NAME_KEY_FUNCTION, 1, name_key, deterministic=True)
    return run_migrations(conn, MIGRATIONS, component="gallery", rebuilds=REBUILDS)
