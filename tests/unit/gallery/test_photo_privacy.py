"""Photo hashes and source names are not left in the clear in a gallery with a key.

With a key, ``photos.sha256`` holds a keyed lookup (HMAC under a subkey of the template
key) and the digest and source name are sealed together; without one, both stay plain.
Every test reads the raw bytes of the database file and its WAL, after a checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from faceindex import db
from faceindex.crypto import TemplateKey
from faceindex.gallery import Gallery, open_gallery
from faceindex.gallery.integrity import check
from faceindex.gallery.schema import MIGRATIONS, NAME_KEY_FUNCTION, SCHEMA_VERSION, name_key
from faceindex.gallery.sealing import Sealer
from faceindex.gallery.store import SqliteStore
from faceindex.pipeline import Pipeline

PhotoOf = Callable[..., Path]

#: A source name that must not be readable in the file of a gallery with a key.
SECRET_NAME = "Zelda-Secret-Surname"


def _named(photo_of: PhotoOf, person: int, *, variant: int = 0) -> Path:
    """A photo of ``person`` whose file name holds :data:`SECRET_NAME`."""
    src = photo_of(person, variant=variant)
    path = src.with_name(f"{SECRET_NAME}_{person}_{variant}.png")
    shutil.copyfile(src, path)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _file_bytes(path: Path) -> bytes:
    """The database file and its WAL, after folding the WAL in where no reader stops it."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return b"".join(p.read_bytes() for p in (path, db.wal_path(path)) if p.exists())


def _traces(path: Path, *needles: str) -> list[str]:
    """Which of ``needles`` (as text, and as raw bytes where hex) the files still hold."""
    data = _file_bytes(path)
    found = []
    for needle in needles:
        forms = [needle.encode()]
        with contextlib.suppress(ValueError):
            forms.append(bytes.fromhex(needle))
        if any(form in data for form in forms):
            found.append(needle)
    return found


def _lookups(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [str(r[0]) for r in conn.execute("SELECT sha256 FROM photos ORDER BY id")]
    finally:
        conn.close()


def _assert_duplicates_found(g: Gallery, photo: Path) -> None:
    again = g.enroll("Ada", [photo])
    assert [o.status for o in again.outcomes] == ["duplicate"]
    other = g.enroll("Bob", [photo])
    assert [(o.status, o.reasons) for o in other.outcomes] == [
        ("rejected", ("duplicate_of_other_person",))
    ]


def test_with_a_key_no_digest_or_source_name_is_in_the_file(
    tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    path, key = tmp_path / "g.db", TemplateKey.generate()
    photo = _named(photo_of, 1)
    with open_gallery(path, pipeline=fake_pipeline, key=key, keep_photos=True) as g:
        g.enroll("Ada", [photo])
        (t,) = g.templates("Ada")
        assert t.source == str(photo)  # readable with the key
        assert t.photo_id is not None and g.photo_bytes(t.photo_id) == photo.read_bytes()
        _assert_duplicates_found(g, photo)
        assert g.check().clean
    assert _traces(path, _digest(photo), str(photo), SECRET_NAME) == []
    (lookup,) = _lookups(path)
    assert lookup != _digest(photo)
    with open_gallery(path, pipeline=fake_pipeline, key=key) as g:  # and after reopening
        _assert_duplicates_found(g, photo)


def test_without_a_key_digest_and_source_stay_plain(
    tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    path = tmp_path / "g.db"
    photo = _named(photo_of, 1)
    with open_gallery(path, pipeline=fake_pipeline) as g:
        g.enroll("Ada", [photo])
        _assert_duplicates_found(g, photo)
        (t,) = g.templates("Ada")
        assert t.source == str(photo)
    assert _lookups(path) == [_digest(photo)]
    assert _traces(path, _digest(photo), SECRET_NAME) == [_digest(photo), SECRET_NAME]


def test_the_lookup_is_keyed_with_a_subkey_not_the_digest_or_the_aes_key() -> None:
    key = TemplateKey.generate()
    digest = hashlib.sha256(b"photo").hexdigest()
    lookup = Sealer(key).lookup(digest)
    assert lookup == Sealer(key).lookup(digest) != Sealer(TemplateKey.generate()).lookup(digest)
    assert lookup != digest and Sealer().lookup(digest) == digest
    assert lookup != hmac.new(key.material, digest.encode(), hashlib.sha256).hexdigest()


def test_rotation_re_derives_lookups_and_decrypt_restores_them(
    tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    path = tmp_path / "g.db"
    key, other = TemplateKey.generate(), TemplateKey.generate()
    photo = _named(photo_of, 1)
    with open_gallery(path, pipeline=fake_pipeline, key=key, keep_photos=True) as g:
        g.enroll("Ada", [photo])
    (old_lookup,) = _lookups(path)
    with open_gallery(path, pipeline=fake_pipeline, key=key) as g:
        assert g.rekey(other) == 1
        assert g.key_ids() == {other.key_id}
        assert g.check().clean
    (new_lookup,) = _lookups(path)
    assert new_lookup not in (old_lookup, _digest(photo))
    assert _traces(path, old_lookup, _digest(photo), SECRET_NAME) == []
    with open_gallery(path, pipeline=fake_pipeline, key=other) as g:
        _assert_duplicates_found(g, photo)
        (t,) = g.templates("Ada")
        assert t.source == str(photo)
        assert t.photo_id is not None and g.photo_bytes(t.photo_id) == photo.read_bytes()
        assert g.rekey(None) == 1
        assert g.key_ids() == {None}
    assert _lookups(path) == [_digest(photo)]
    assert _traces(path, new_lookup) == []
    with open_gallery(path, pipeline=fake_pipeline) as g:
        (t,) = g.templates("Ada")
        assert t.source == str(photo) and not t.encrypted
        _assert_duplicates_found(g, photo)


def test_a_plaintext_gallery_opened_with_a_key_is_converted_at_once(
    tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    path, key = tmp_path / "g.db", TemplateKey.generate()
    photo = _named(photo_of, 1)
    with open_gallery(path, pipeline=fake_pipeline) as g:
        g.enroll("Ada", [photo])
    assert _traces(path, _digest(photo), SECRET_NAME)
    with open_gallery(path, pipeline=fake_pipeline, key=key) as g:
        (entry,) = g.audit(action="keys_seal")
        assert entry["details"] == {"templates": 1, "photos": 1, "key_id": key.key_id}
        assert g.key_ids() == {key.key_id}
        assert g.check().clean
        _assert_duplicates_found(g, photo)
        (t,) = g.templates("Ada")
        assert t.source == str(photo)
    assert _traces(path, _digest(photo), SECRET_NAME) == []
    with open_gallery(path, pipeline=fake_pipeline, key=key) as g:  # nothing more to seal
        assert len(g.audit(action="keys_seal")) == 1


def _schema_5_gallery(path: Path, key: TemplateKey) -> str:
    """A gallery as schema 5 wrote it with a key: a template and a kept photo sealed, the
    photo's digest and source name plain. Returns the digest."""
    conn = db.connect(path)
    conn.create_function(NAME_KEY_FUNCTION, 1, name_key, deterministic=True)
    db.migrate(conn, MIGRATIONS[:5], component="gallery")
    digest = hashlib.sha256(b"old-photo").hexdigest()
    vec = np.full(48, 48**-0.5, dtype="<f4").tobytes()
    stamp = db.now()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO meta (key, value) VALUES ('model_id', 'fake-v1'), ('dim', '48')")
    conn.execute(
        "INSERT INTO persons (id, name, name_key, metadata, created_at, updated_at)"
        " VALUES (1, 'Ada', 'ada', '{}', ?, ?)",
        (stamp, stamp),
    )
    conn.execute(
        "INSERT INTO photos (id, person_id, sha256, source, data, data_key_id, created_at)"
        " VALUES (1, 1, ?, ?, ?, ?, ?)",
        (
            digest,
            f"/photos/{SECRET_NAME}.png",
            key.encrypt(b"old-photo", f"photo:1:{digest}".encode()),
            key.key_id,
            stamp,
        ),
    )
    conn.execute(
        "INSERT INTO templates (id, person_id, photo_id, model_id, dim, vector, key_id,"
        " created_at) VALUES (1, 1, 1, 'fake-v1', 48, ?, ?, ?)",
        (key.encrypt(vec, b"template:1:fake-v1"), key.key_id, stamp),
    )
    conn.execute("COMMIT")
    conn.close()
    return digest


def test_a_schema_5_gallery_is_migrated_and_its_plain_hashes_sealed(
    tmp_path: Path, fake_pipeline: Pipeline
) -> None:
    path, key = tmp_path / "g.db", TemplateKey.generate()
    digest = _schema_5_gallery(path, key)
    with open_gallery(path, pipeline=fake_pipeline) as g:  # no key: migrated, reported
        assert g._store.read("PRAGMA user_version")[0][0] == SCHEMA_VERSION == 6
        report = g.check()
        assert any("photo hash" in issue for issue in report.issues), report.issues
    with open_gallery(path, pipeline=fake_pipeline, key=key) as g:
        (entry,) = g.audit(action="keys_seal")
        assert entry["details"] == {"templates": 0, "photos": 1, "key_id": key.key_id}
        assert g.photo_bytes(1) == b"old-photo"  # the kept photo's seal still opens
        (t,) = g.templates("Ada")
        assert t.source == f"/photos/{SECRET_NAME}.png"
        assert g.check().clean
        assert g._store.photo_owners(digest) == [1]
    assert _traces(path, digest, SECRET_NAME) == []


def test_check_reports_plain_hashes_and_sources_in_a_keyed_gallery(
    tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    path, key = tmp_path / "g.db", TemplateKey.generate()
    photo = _named(photo_of, 1)
    with open_gallery(path, pipeline=fake_pipeline, key=key) as g:
        g.enroll("Ada", [photo])
    conn = sqlite3.connect(path)
    conn.execute("UPDATE photos SET source = 'leaked.png'")
    conn.commit()
    conn.close()
    with SqliteStore(path, sealer=Sealer(key)) as store:
        report = check(store)
    assert not report.clean
    assert any("source name" in issue for issue in report.issues), report.issues
    with open_gallery(path, pipeline=fake_pipeline) as g:  # without the key too
        assert any("source name" in issue for issue in g.check().issues)
    with open_gallery(path, pipeline=fake_pipeline, key=key) as g:  # the key clears it
        assert g.check().clean
        (t,) = g.templates("Ada")
        assert t.source == str(photo)
    assert _traces(path, "leaked.png") == []


def test_listing_without_the_key_hides_sources_and_keeps_working(
    tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    path, key = tmp_path / "g.db", TemplateKey.generate()
    with open_gallery(path, pipeline=fake_pipeline, key=key) as g:
        g.enroll("Ada", [_named(photo_of, 1)])
    with open_gallery(path, pipeline=fake_pipeline) as g:
        (t,) = g.templates("Ada")
        assert t.encrypted and t.source is None
        assert g.remove("Ada") == 1


def test_merging_keeps_sealed_photos_readable_and_deduplicated(
    tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    path, key = tmp_path / "g.db", TemplateKey.generate()
    one, two = _named(photo_of, 1), _named(photo_of, 1, variant=1)
    with open_gallery(path, pipeline=fake_pipeline, key=key, keep_photos=True) as g:
        g.enroll("Ada", [one])
        g.enroll("Ada B", [two], force=True)
        g.merge("Ada", "Ada B")
        sources = sorted(t.source or "" for t in g.templates("Ada"))
        assert sources == sorted([str(one), str(two)])
        for t in g.templates("Ada"):
            assert t.photo_id is not None and g.photo_bytes(t.photo_id) is not None
        _assert_duplicates_found(g, two)
    assert _traces(path, _digest(one), _digest(two), SECRET_NAME) == []


@pytest.mark.parametrize("keyed", [False, True])
def test_export_and_import_keep_sources_and_duplicates(
    tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf, keyed: bool
) -> None:
    key = TemplateKey.generate() if keyed else None
    photo = _named(photo_of, 1)
    with open_gallery(tmp_path / "src.db", pipeline=fake_pipeline, key=key) as g:
        g.enroll("Ada", [photo])
        data = g.export()
    if keyed:
        assert SECRET_NAME.encode() not in data and _digest(photo).encode() not in data
    dst = tmp_path / "dst.db"
    with open_gallery(dst, pipeline=fake_pipeline, key=key) as g:
        assert g.import_from(data).templates_added == 1
        assert g.import_from(data).skipped == 1
        (t,) = g.templates("Ada")
        assert t.source == str(photo)
        _assert_duplicates_found(g, photo)
    if keyed:
        assert _traces(dst, _digest(photo), SECRET_NAME) == []
