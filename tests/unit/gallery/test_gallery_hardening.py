"""Regression tests of the gallery's hardening: ids never reused, metadata validated before
any write, erasure that does not depend on luck (pending erasures, ``Gallery.check``),
private files, and plaintext sealed when a gallery is opened with a key."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faceindex import db
from faceindex.crypto import KeyRequiredError, TemplateKey
from faceindex.errors import InvalidInputError
from faceindex.gallery import Gallery, open_gallery
from faceindex.gallery.schema import MIGRATIONS, SCHEMA_VERSION
from faceindex.pipeline import Pipeline

PhotoOf = Callable[..., Path]


@pytest.fixture()
def gallery(gallery_location: str, fake_pipeline: Pipeline) -> Iterator[Gallery]:
    with open_gallery(gallery_location, pipeline=fake_pipeline) as g:
        yield g


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- 1. ids are never reused ---------------------------------------------------------------


def test_a_deleted_persons_id_is_never_given_to_the_next_person(gallery: Gallery) -> None:
    gallery.create_person("Ada")
    bob = gallery.create_person("Bob")
    gallery.remove(bob.id)
    carl = gallery.create_person("Carl")
    assert carl.id > bob.id


def test_template_and_photo_ids_are_never_reused(gallery: Gallery, photo_of: PhotoOf) -> None:
    gallery.enroll("Ada", [photo_of(1)])
    report = gallery.enroll("Bob", [photo_of(2)])
    assert report.person is not None
    (old,) = gallery.templates("Bob")
    gallery.remove("Bob")
    gallery.enroll("Carl", [photo_of(3)])
    (new,) = gallery.templates("Carl")
    assert new.id > old.id
    assert new.photo_id is not None and old.photo_id is not None and new.photo_id > old.photo_id


def _old_gallery(path: Path) -> None:
    """A gallery file as schema version 2 wrote it: ids reusable, with people, a kept photo,
    templates, a deleted person (the highest id) and its audit entries."""
    conn = db.connect(path)
    db.migrate(conn, MIGRATIONS[:2], component="gallery")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    stamp = db.now()
    vec = np.full(48, 48**-0.5, dtype="<f4").tobytes()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO meta (key, value) VALUES ('model_id', 'fake-v1'), ('dim', '48')")
    for pid, name in ((1, "Ada"), (2, "Bob"), (3, "Gone")):
        conn.execute(
            "INSERT INTO persons (id, name, metadata, created_at, updated_at)"
            " VALUES (?, ?, '{\"k\": 1}', ?, ?)",
            (pid, name, stamp, stamp),
        )
        conn.execute(
            "INSERT INTO photos (id, person_id, sha256, source, data, created_at)"
            " VALUES (?, ?, ?, 'x.png', ?, ?)",
            (pid, pid, f"sha{pid}", b"photo-bytes" if pid == 1 else None, stamp),
        )
        conn.execute(
            "INSERT INTO templates (id, person_id, photo_id, model_id, dim, vector, quality,"
            " bbox, created_at) VALUES (?, ?, ?, 'fake-v1', 48, ?, 0.9, '[1, 2, 3, 4]', ?)",
            (pid, pid, pid, vec, stamp),
        )
        conn.execute(
            "INSERT INTO audit (at, actor, action, person_id) VALUES (?, 'old', 'enroll', ?)",
            (stamp, pid),
        )
    conn.execute("DELETE FROM persons WHERE id = 3")
    conn.execute(
        "INSERT INTO audit (at, actor, action, person_id) VALUES (?, 'old', 'delete', 3)",
        (db.now(),),
    )
    conn.execute("COMMIT")
    # Version 2 would hand the deleted person's id 3 to the next person:
    assert conn.execute("SELECT MAX(id) FROM persons").fetchone()[0] == 2
    conn.close()


def test_an_old_gallery_migrates_with_every_row_and_never_reuses_ids(
    tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    path = tmp_path / "old.db"
    _old_gallery(path)
    with open_gallery(path, pipeline=fake_pipeline, keep_photos=True) as g:
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        for table in ("persons", "photos", "templates"):
            sql = conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()[0]
            assert "AUTOINCREMENT" in sql, table
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert {
            "photos_sha256",
            "templates_person",
            "templates_photo",
            "templates_logged_add",
            "templates_logged_remove",
        } <= names
        assert not {n for n in names if n.endswith("_new")}
        conn.close()
        # every row, id and value kept
        assert [(p.id, p.name, dict(p.metadata)) for p in g.people()] == [
            (1, "Ada", {"k": 1}),
            (2, "Bob", {"k": 1}),
        ]
        (t,) = g.templates("Ada")
        assert (t.id, t.photo_id, t.quality, t.bbox is not None) == (1, 1, 0.9, True)
        assert g.photo_bytes(1) == b"photo-bytes"
        vs = g._store.vectors()
        assert vs.template_ids.tolist() == [1, 2] and np.allclose(vs.vectors, 48**-0.5)
        # the triggers still log, the foreign keys still cascade
        seq_before = vs.last_seq
        g.remove("Bob")
        added, removed, _ = g._store.changes_since(seq_before)
        assert removed == [2] and added == []
        assert g._store.read("SELECT COUNT(*) FROM photos WHERE person_id = 2")[0][0] == 0
        # and no id is ever reused: not the deleted #3 (audit), not Bob's #2
        carl = g.create_person("Carl")
        assert carl.id == 4
        g.enroll("Carl", [photo_of(5)])
        (t,) = g.templates("Carl")
        assert t.id == 4  # #3 was the deleted person's (template log)
        assert t.photo_id is not None and t.photo_id > 2  # above every photo id still known


def test_the_migration_runner_refuses_a_rebuild_that_breaks_foreign_keys(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "x.db")
    scripts = (
        "CREATE TABLE a (id INTEGER PRIMARY KEY);\nCREATE TABLE b (a_id INTEGER REFERENCES a(id));",
        "INSERT INTO b (a_id) VALUES (7);",
    )
    from faceindex.errors import StorageError

    with pytest.raises(StorageError, match="foreign key"):
        db.migrate(conn, scripts, component="t", rebuilds={2})
    assert conn.execute("SELECT COUNT(*) FROM b").fetchone()[0] == 0  # rolled back
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1  # back on
    conn.close()


# -- 2. metadata and names are validated before any write ----------------------------------


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (_nested(6), "nested deeper than 5"),
        ({"a": [[[[[1]]]]]}, "nested deeper than 5"),
        ({f"k{i}": i for i in range(65)}, "65 keys"),
        ({"k" * 101: 1}, "101 characters"),
        ({"k": "x" * (16 * 1024)}, "bytes as JSON"),
        ({"k": "\ud800"}, "not valid Unicode"),
        ({"\udfff": 1}, "not valid Unicode"),
        ({"k": float("nan")}, "finite"),
        ({"k": float("inf")}, "finite"),
        ({"k": {1, 2}}, "not a JSON value"),
        ({1: "x"}, "keys must be strings"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_bad_metadata_is_refused_and_nothing_is_stored(
    gallery: Gallery, metadata: Any, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        gallery.create_person("Ada", metadata=metadata)
    assert gallery.count_people() == 0
    ok = gallery.create_person("Bob", metadata={"fine": True})
    with pytest.raises(InvalidInputError, match=message):
        gallery.update(ok.id, metadata=metadata)
    assert [dict(p.metadata) for p in gallery.people()] == [{"fine": True}]


def test_metadata_at_the_limits_is_kept(gallery: Gallery) -> None:
    metadata = {"deep": _nested(4), "many": {f"k{i}": i for i in range(64)}, "k" * 100: 1.5}
    person = gallery.create_person("Ada", metadata=metadata)
    assert json.loads(json.dumps(dict(gallery.person(person.id).metadata))) == metadata
    assert len(gallery.people()) == 1


def test_a_name_with_a_lone_surrogate_is_refused(gallery: Gallery) -> None:
    with pytest.raises(InvalidInputError, match="Unicode"):
        gallery.create_person("Ada\ud800")
    person = gallery.create_person("Ada")
    with pytest.raises(InvalidInputError, match="Unicode"):
        gallery.rename(person.id, "B\udc00b")
    assert [p.name for p in gallery.people()] == ["Ada"]


def test_an_external_id_with_a_lone_surrogate_is_refused(gallery: Gallery) -> None:
    with pytest.raises(InvalidInputError, match="Unicode"):
        gallery.create_person("Ada", external_id="x\ud800")
    person = gallery.create_person("Ada")
    with pytest.raises(InvalidInputError, match="Unicode"):
        gallery.update(person.id, external_id="\udc80")
    assert gallery.person(person.id).external_id is None


def test_a_photo_with_an_undecodable_file_name_is_enrolled(
    gallery: Gallery, photo_of: PhotoOf, tmp_path: Path
) -> None:
    odd = tmp_path / os.fsdecode(b"caf\xe9.png")  # not UTF-8: a lone surrogate in str
    odd.write_bytes(photo_of(1).read_bytes())
    report = gallery.enroll("Ada", [odd])
    assert report.person is not None and report.person.templates == 1
    (t,) = gallery.templates("Ada")
    assert t.source is not None and t.source.endswith("caf\\udce9.png")
    assert [p.name for p in gallery.people()] == ["Ada"]


# -- 3. erasure does not depend on luck ----------------------------------------------------


def _files_contain(path: Path, needle: bytes) -> bool:
    found = False
    for candidate in (path, db.wal_path(path)):
        if candidate.exists() and needle in candidate.read_bytes():
            found = True
    return found


def test_erasure_behind_a_reader_is_pending_then_finished_and_checked(
    tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    path = tmp_path / "g.db"
    name = "Zelda Erasable-Name"
    with open_gallery(path, pipeline=fake_pipeline) as g:
        g.enroll("Ada", [photo_of(1)])
        g.enroll(name, [photo_of(2)])
        assert g.check().clean
        assert _files_contain(path, name.encode())
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        assert reader.execute("SELECT COUNT(*) FROM persons").fetchone()[0] == 2
        start = time.monotonic()
        assert g.remove(name) == 1
        assert time.monotonic() - start < 5  # no 30 s wait on the reader
        pending = g.pending_erasures()
        assert [(e["action"], e["person_id"]) for e in pending] == [("delete", 2)]
        report = g.check()
        assert not report.clean and report.pending_erasures and report.wal_bytes > 0
        assert any("pending" in issue for issue in report.issues)
        reader.execute("COMMIT")
        reader.close()
        g.create_person("Bob")  # the next write finishes the erasure
        assert g.pending_erasures() == []
        report = g.check()
        assert report.clean, report.issues
        assert report.deleted_people == 1 and report.wal_bytes == 0
        assert report.as_dict()["clean"] is True
        assert not _files_contain(path, name.encode())


def test_a_pending_erasure_is_finished_when_the_gallery_is_opened_again(
    tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    path = tmp_path / "g.db"
    with open_gallery(path, pipeline=fake_pipeline) as g:
        g.enroll("Eve Secretname", [photo_of(2)])
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT * FROM persons").fetchall()
        g.remove("Eve Secretname")
        assert g.pending_erasures()
    assert _files_contain(path, b"Eve Secretname")  # the reader still holds it
    reader.execute("COMMIT")
    with open_gallery(path, pipeline=fake_pipeline) as g:
        assert g.pending_erasures() == []
        assert g.check().clean
    reader.close()
    assert not _files_contain(path, b"Eve Secretname")


def test_check_finds_a_dirty_free_page_and_a_deleted_persons_rows(
    tmp_path: Path, fake_pipeline: Pipeline
) -> None:
    path = tmp_path / "g.db"
    with open_gallery(path, pipeline=fake_pipeline) as g:
        ada = g.create_person("Ada", metadata={"blob": "x" * 10000})
        g.update(ada.id, metadata={})  # frees overflow pages (zeroed by secure_delete)
        report = g.check()
        assert report.clean and report.free_pages > 0 and report.dirty_free_pages == []
        # an audit entry says #1 was deleted, but a row made before it remains
        g.record("delete", person_id=ada.id)
        report = g.check()
        assert not report.clean and "deleted person #1" in " ".join(report.issues)
    # a free page holding data (as without secure_delete) is found in the raw file
    conn = sqlite3.connect(path)
    trunk = conn.execute("PRAGMA freelist_count").fetchone()[0]
    conn.close()
    assert trunk > 0
    raw = bytearray(path.read_bytes())
    page_size = int.from_bytes(raw[16:18], "big")
    first = int.from_bytes(raw[32:36], "big")
    raw[(first - 1) * page_size + page_size - 10] = 0x41  # "A": no page number that high
    path.write_bytes(bytes(raw))
    with open_gallery(path, pipeline=fake_pipeline) as g:
        report = g.check()
        assert report.dirty_free_pages == [first]


# -- 4. files others cannot read ------------------------------------------------------------


def test_a_new_gallery_is_private_whatever_the_umask(
    tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "new" / "deeper" / "g.db"
        with open_gallery(path, pipeline=fake_pipeline) as g:
            g.enroll("Ada", [photo_of(1)])
            assert _mode(path) == 0o600
            for companion in (db.wal_path(path), path.with_name("g.db-shm")):
                assert _mode(companion) == 0o600, companion
            assert _mode(tmp_path / "new") == 0o700
            assert _mode(tmp_path / "new" / "deeper") == 0o700
    finally:
        os.umask(old)


def test_an_existing_gallery_readable_by_others_is_warned_about_once(
    tmp_path: Path, fake_pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "g.db"
    with open_gallery(path, pipeline=fake_pipeline):
        pass
    assert not [r for r in caplog.records if "read by other users" in r.getMessage()]
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING), open_gallery(path, pipeline=fake_pipeline) as g:
        g.create_person("Ada")
    warnings = [r for r in caplog.records if "read by other users" in r.getMessage()]
    assert len(warnings) == 1 and str(path) in warnings[0].getMessage()


def test_index_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    from faceindex.index.base import write_index_file

    old = os.umask(0)
    try:
        target = tmp_path / "i.idx"
        target.write_bytes(b"old")
        target.chmod(0o644)
        write_index_file(
            target, backend="exact", dim=2, count=1, sections=[("v", np.zeros((1, 2), "<f4"))]
        )
    finally:
        os.umask(old)
    assert _mode(target) == 0o600


# -- encryption: plaintext left from before the key --------------------------------------


def test_plaintext_is_sealed_when_the_gallery_is_opened_with_a_key(
    tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    path = tmp_path / "g.db"
    with open_gallery(path, pipeline=fake_pipeline, keep_photos=True) as g:
        g.enroll("Ada", [photo_of(1)])
        assert g.key_ids() == {None}
        raw = g._store.vectors().vectors[0].astype("<f4").tobytes()
    key = TemplateKey.generate()
    with open_gallery(path, pipeline=fake_pipeline, key=key) as g:
        assert g.key_ids() == {key.key_id}
        (t,) = g.templates("Ada")
        assert t.encrypted and t.photo_id is not None
        assert g.photo_bytes(t.photo_id) == photo_of(1).read_bytes()
        (entry,) = g.audit(action="keys_seal")
        assert entry["details"] == {"templates": 1, "photos": 1, "key_id": key.key_id}
        (face,) = g.identify(photo_of(1, variant=1))
        assert face.person is not None and face.person.name == "Ada"
        assert g.check().clean
    assert not _files_contain(path, raw[:32])
    assert not _files_contain(path, photo_of(1).read_bytes()[200:264])
    with open_gallery(path, pipeline=fake_pipeline) as g, pytest.raises(KeyRequiredError):
        g.identify(photo_of(1, variant=1))
    with open_gallery(path, pipeline=fake_pipeline, key=key) as g:  # nothing more to seal
        assert len(g.audit(action="keys_seal")) == 1


# -- monitors -------------------------------------------------------------------------------


def test_monitor_ids_are_never_reused_not_even_by_the_next_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from faceindex.video import monitor

    clock = [1_800_000_000.0]
    monkeypatch.setattr(monitor.time, "time", lambda: clock[0])
    first = monitor.MonitorManager(None, None)  # type: ignore[arg-type]
    ids = [first._next_id() for _ in range(3)]  # three in the same second
    assert ids == sorted(set(ids)) and ids[0] >= 1
    clock[0] += 10  # the service restarts
    restarted = monitor.MonitorManager(None, None)  # type: ignore[arg-type]
    assert restarted._next_id() > max(ids)
    assert max(ids) < 2**31  # the API's bound on monitor ids
