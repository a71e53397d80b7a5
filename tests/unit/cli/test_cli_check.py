"""``faceindex check``: exit 0 when erased people left no trace, 1 when something is left
(a pending erasure behind a reader), 6 when there is no gallery; and key files are made
private whatever the umask."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from cli_helpers import Photos, Run


def test_check_is_clean_after_an_erasure_and_not_while_one_is_pending(
    cli: Run, photos: Photos, gallery_path: Path
) -> None:
    assert cli("check", "--gallery", gallery_path).code == 6  # no gallery yet
    assert cli("enroll", "Annabel Uniquename", photos.of(1)).code == 0
    assert cli("enroll", "Bob", photos.of(2)).code == 0
    assert cli("people", "remove", "Bob", "--yes").code == 0
    r = cli("check", "--json")
    assert r.code == 0, r.out + r.err
    assert r.json["clean"] is True and r.json["issues"] == []
    assert r.json["integrity"] == "ok" and r.json["wal_bytes"] == 0
    r = cli("check")
    assert r.code == 0 and "clean" in r.out

    reader = sqlite3.connect(gallery_path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM persons").fetchall()
    try:
        from faceindex.gallery import open_gallery

        with open_gallery(gallery_path) as g:
            g.remove("Annabel Uniquename")
            assert g.pending_erasures()
            r = cli("check", "--json")
            assert r.code == 1
            assert r.json["clean"] is False and len(r.json["pending_erasures"]) == 1
            r = cli("check")
            assert r.code == 1 and "NOT clean" in r.out and "pending" in r.out
    finally:
        reader.execute("COMMIT")
        reader.close()
    r = cli("check", "--json")
    assert r.code == 0 and r.json["clean"] is True and r.json["deleted_people"] >= 1
    assert b"Annabel Uniquename" not in gallery_path.read_bytes()


def test_a_generated_key_file_is_private_whatever_the_umask(cli: Run, tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        key = tmp_path / "k"
        assert cli("encryption-key", "generate", "--out", key).code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert cli("encryption-key", "generate", "--out", key).code == 2  # never overwritten
