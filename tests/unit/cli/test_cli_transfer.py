"""``faceindex export`` and ``faceindex import`` (cli/commands/transfer.py), fake backends."""

from __future__ import annotations

import stat
from pathlib import Path

from cli_helpers import Photos, Run

from faceindex.crypto import TemplateKey


def test_export_then_import_into_another_gallery(cli: Run, photos: Photos, tmp_path: Path) -> None:
    assert cli("enroll", "Ann", photos.of(1, 0), photos.of(1, 1)).code == 0
    assert cli("enroll", "Bob", photos.of(2, 0)).code == 0
    out = tmp_path / "backup" / "g.fxg"
    r = cli("export", out, "--json")
    assert r.code == 0, r.err
    assert r.json == {"path": str(out), "bytes": out.stat().st_size, "sealed": False}
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    r = cli("export", out)
    assert r.code == 2 and "exists" in r.err  # never overwritten

    other = tmp_path / "other.db"
    r = cli("import", "--gallery", other, out)
    assert r.code == 0, r.err
    assert r.out.startswith(f"imported {out}: 2 people created, 0 merged by name, 3 faces")
    r = cli("import", "--gallery", other, out, "--json")
    assert r.json == {"people_created": 0, "people_merged": 2, "templates_added": 0, "skipped": 3}
    r = cli("identify", photos.of(1, 2), "--gallery", other, "--json")
    assert r.code == 0 and "Ann" in r.out
    assert cli("import", "--gallery", other, tmp_path / "missing.fxg").code == 6
    (tmp_path / "junk.fxg").write_bytes(b"junk\n")
    r = cli("import", "--gallery", other, tmp_path / "junk.fxg")
    assert r.code != 0 and "not a faceindex gallery export" in r.err


def test_an_encrypted_export_needs_the_key(cli: Run, photos: Photos, tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text(TemplateKey.generate().to_text())
    assert cli("enroll", "Ann", photos.of(1, 0), "--key-file", key).code == 0
    out = tmp_path / "g.fxg"
    r = cli("export", out, "--key-file", key)
    assert r.code == 0 and "encrypted" in r.out
    other = tmp_path / "other.db"
    r = cli("import", "--gallery", other, out)
    assert r.code != 0 and "encrypted" in r.err
    r = cli("import", "--gallery", other, out, "--key-file", key, "--json")
    assert r.code == 0 and r.json["templates_added"] == 1
