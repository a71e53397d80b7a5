"""PostgreSQL plumbing that needs no server: URLs, redaction, rows, typed errors."""

from __future__ import annotations

import sqlite3

import pytest

from faceindex import pg
from faceindex.config import GallerySettings, Settings
from faceindex.errors import StorageError
from faceindex.gallery import open_gallery

SECRET = "Tr0ub4dor-3"


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("postgresql://u@h:5432/db", True),
        ("  POSTGRES://u@h/db", True),
        ("gallery.db", False),
        ("/srv/postgresql://x.db", False),
        (None, False),
    ],
)
def test_a_url_is_told_from_a_file(text: str | None, url: bool) -> None:
    assert pg.is_url(text) is url


def test_passwords_are_redacted_everywhere() -> None:
    url = f"postgresql://ops:{SECRET}@db.example:5433/faces?sslmode=require"
    assert pg.redact(url) == "postgresql://ops:***@db.example:5433/faces?sslmode=require"
    assert pg.password_of(url) == SECRET
    query = f"postgresql://ops@db/faces?password={SECRET}&sslmode=require"
    assert SECRET not in pg.redact(query) and pg.password_of(query) == SECRET
    message = f'connection to "{url}" failed: password authentication failed ({SECRET})'
    assert SECRET not in pg.scrub(message, url)
    assert pg.redact("postgresql://u@h/db") == "postgresql://u@h/db"
    settings = Settings(gallery=GallerySettings(path=url))
    assert SECRET not in repr(settings) and "ops:***@" in repr(settings)


def test_rows_read_by_name_and_position() -> None:
    row = pg.Row((7, "Ada"), {"id": 0, "name": 1})
    assert row["id"] == 7 and row[1] == "Ada" and tuple(row) == (7, "Ada")
    assert row.keys() == ["id", "name"]
    with pytest.raises(IndexError):
        row["missing"]
    cursor = pg.PgCursor([row, row], 2)
    assert cursor.fetchone() == row and cursor.fetchall() == [row] and cursor.fetchone() is None


def test_postgres_errors_are_sqlites_db_api_classes() -> None:
    # so that table code catching sqlite3.IntegrityError (a duplicate) runs on both
    assert issubclass(pg.PgIntegrityError, sqlite3.IntegrityError)
    assert issubclass(pg.PgOperationalError, sqlite3.OperationalError)
    assert issubclass(pg.PgDatabaseError, sqlite3.DatabaseError)


def test_an_unreachable_server_is_a_storage_error_without_the_password() -> None:
    url = f"postgresql://ops:{SECRET}@127.0.0.1:1/faces?connect_timeout=2"
    with pytest.raises(StorageError) as caught:
        open_gallery(url)
    assert SECRET not in caught.value.message and "ops:***@127.0.0.1:1" in caught.value.message
