"""faceindex.testing.pg_local.LocalPostgres: its settings reach the server, it listens on
127.0.0.1 only, and it leaves nothing behind."""

from __future__ import annotations

import psycopg
import pytest

from faceindex.errors import ConfigError
from faceindex.testing.pg_local import LocalPostgres


def _show(url: str, *names: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [str(conn.execute(f"SHOW {n}".encode()).fetchone()[0]) for n in names]  # type: ignore[index]


def test_a_local_server_takes_its_settings_and_leaves_nothing(pg_server: LocalPostgres) -> None:
    # pg_server: only so that the test skips where no server can start
    with LocalPostgres(fsync=True, shared_buffers="32MB", maintenance_work_mem="96MB") as server:
        folder = server.folder
        assert folder is not None and folder.is_dir()
        url = server.new_database()
        assert _show(url, "fsync", "shared_buffers", "maintenance_work_mem") == [
            "on",
            "32MB",
            "96MB",
        ]
        assert _show(url, "listen_addresses") == ["127.0.0.1"]
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(b"SELECT extname FROM pg_extension WHERE extname = 'vector'")
            assert row.fetchone() == ("vector",)
    assert not folder.exists() and not server.running
    assert _show(pg_server.new_database(), "fsync") == ["off"]  # the tests' server: no fsync


def test_a_bad_memory_size_is_refused_before_anything_starts() -> None:
    with pytest.raises(ConfigError, match="memory size"), LocalPostgres(shared_buffers="1G; rm"):
        pass
