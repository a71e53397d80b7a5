"""The API key table module: its own migrations, its audit entries, its refusals."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from faceindex.apikeys import MIGRATIONS, KeyRing, Scope
from faceindex.errors import ConflictError, StorageError
from faceindex.gallery import open_gallery


def _schema_version(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(
            conn.execute(
                "SELECT version FROM schema_versions WHERE component = 'api_keys'"
            ).fetchone()[0]
        )


def test_a_new_gallery_gets_the_key_table_from_the_key_module(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    with open_gallery(db):
        pass
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "api_keys" not in tables  # the gallery's migrations know nothing of keys
    with KeyRing.open(db, actor="cli") as ring:
        key, secret = ring.create("ops", "read,write")
        assert ring.authenticate(secret) == key and key.allows(Scope.WRITE)
        assert ring.revoke(key.id).revoked_at is not None
    assert _schema_version(db) == len(MIGRATIONS)
    with open_gallery(db) as g:
        events = g.audit()
    assert [(e["action"], e["actor"]) for e in events] == [
        ("api_key_revoke", "cli"),
        ("api_key_create", "cli"),
    ]


def test_a_gallery_from_before_the_split_keeps_its_keys(tmp_path: Path) -> None:
    """Galleries made when the gallery's migration 2 created ``api_keys`` open unchanged."""
    db = tmp_path / "old.db"
    with open_gallery(db):
        pass
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE api_keys (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " key_hash TEXT NOT NULL UNIQUE, scopes TEXT NOT NULL, created_at TEXT NOT NULL,"
            " last_used_at TEXT, revoked_at TEXT)"
        )
        conn.execute(
            "INSERT INTO api_keys (name, key_hash, scopes, created_at)"
            " VALUES ('old', 'abc', 'read', '2026-01-01')"
        )
    with KeyRing.open(db) as ring:
        assert [k.name for k in ring.keys(include_revoked=True)] == ["old"]
    assert _schema_version(db) == 1


def test_keys_live_only_in_a_gallery_file(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    with pytest.raises(StorageError, match="not a faceindex gallery"):
        KeyRing.open(other)


def test_importing_faceindex_loads_nothing_heavy() -> None:
    code = (
        "import sys, faceindex\n"
        "from faceindex import Pipeline, open_gallery, Match, Identification, Face\n"
        "heavy = {'onnxruntime', 'dlib', 'cv2', 'fastapi', 'sqlite3', 'matplotlib'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_keys_are_created_checked_and_revoked_on_each_store(gallery_location: str) -> None:
    """The same key ring on a SQLite file and on a PostgreSQL database (pg_server)."""
    with open_gallery(gallery_location) as g, KeyRing.open(g.location, actor="t") as ring:
        key, secret = ring.create("ops", "read,write")
        assert Scope.WRITE in key.scopes and Scope.ADMIN not in key.scopes
        assert ring.authenticate(secret) == key and ring.authenticate(secret + "x") is None
        with pytest.raises(ConflictError, match="already exists"):
            ring.create("ops", "read")
        assert ring.revoke(key.id).revoked_at is not None
        assert ring.authenticate(secret) is None and ring.keys(include_revoked=False) == []
        assert [e["action"] for e in g.audit()][:2] == ["api_key_revoke", "api_key_create"]
