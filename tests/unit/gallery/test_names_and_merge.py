"""Names matched regardless of case (schema 5) and merging two people, on the fakes."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from faceindex import db
from faceindex.crypto import TemplateKey
from faceindex.errors import ConflictError, InvalidInputError, NotFoundError
from faceindex.gallery import EnrolStatus, Gallery, open_gallery
from faceindex.gallery.schema import MIGRATIONS, SCHEMA_VERSION, name_key
from faceindex.pipeline import Pipeline
from faceindex.types import IdentDecision

PhotoOf = Callable[..., Path]


@pytest.fixture()
def gallery(gallery_location: str, fake_pipeline: Pipeline) -> Iterator[Gallery]:
    with open_gallery(gallery_location, pipeline=fake_pipeline) as g:
        yield g


def test_name_key_folds_case_and_unicode_forms() -> None:
    assert name_key("  Barack Obama ") == name_key("barack obama")
    assert name_key("ÉLISE") == name_key("élise")
    assert name_key("Straße") == name_key("STRASSE")
    assert name_key("Ada") != name_key("Adam")


def test_enrolling_a_name_in_another_case_adds_to_the_existing_person(
    gallery: Gallery, photo_of: PhotoOf
) -> None:
    first = gallery.enroll("Barack Obama", [photo_of(1)]).person
    second = gallery.enroll("barack obama", [photo_of(1, variant=1)]).person
    assert first is not None and second is not None
    assert second.id == first.id and second.name == "Barack Obama" and second.templates == 2
    assert gallery.count_people() == 1
    assert gallery.person("BARACK OBAMA").id == first.id


def test_create_and_rename_conflict_in_plain_words(gallery: Gallery) -> None:
    ada = gallery.create_person("Ada Lovelace", external_id="e1")
    with pytest.raises(ConflictError, match="regardless of case") as caught:
        gallery.create_person("ada lovelace")
    assert "constraint" not in caught.value.message.lower()
    assert caught.value.details["person_id"] == ada.id
    bob = gallery.create_person("Bob")
    with pytest.raises(ConflictError, match="'Ada Lovelace' already exists"):
        gallery.rename(bob.id, "ADA LOVELACE")
    with pytest.raises(ConflictError, match="external id 'e1'"):
        gallery.create_person("Carl", external_id="e1")
    with pytest.raises(ConflictError, match="external id 'e1'"):
        gallery.update(bob.id, external_id="e1")
    # a person may change the case of their own name
    assert gallery.rename(ada.id, "ADA LOVELACE").name == "ADA LOVELACE"


def _v4_gallery_with_case_twins(path: Path) -> None:
    """A gallery as schema 4 wrote it, holding two names that differ only in case."""
    conn = db.connect(path)
    db.migrate(conn, MIGRATIONS[:4], component="gallery", rebuilds={3})
    stamp = db.now()
    vec = np.full(48, 48**-0.5, dtype="<f4").tobytes()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO meta (key, value) VALUES ('model_id', 'fake-v1'), ('dim', '48')")
    for pid, name in ((1, "Ada"), (2, "ada"), (3, "Bob")):
        conn.execute(
            "INSERT INTO persons (id, name, metadata, created_at, updated_at)"
            " VALUES (?, ?, '{}', ?, ?)",
            (pid, name, stamp, stamp),
        )
        conn.execute(
            "INSERT INTO photos (id, person_id, sha256, created_at) VALUES (?, ?, ?, ?)",
            (pid, pid, f"sha{pid}", stamp),
        )
        conn.execute(
            "INSERT INTO templates (id, person_id, photo_id, model_id, dim, vector, created_at)"
            " VALUES (?, ?, ?, 'fake-v1', 48, ?, ?)",
            (pid, pid, pid, vec, stamp),
        )
    conn.execute("COMMIT")
    conn.close()


def test_migration_keeps_names_that_differ_only_in_case(
    tmp_path: Path, fake_pipeline: Pipeline
) -> None:
    path = tmp_path / "old.db"
    _v4_gallery_with_case_twins(path)
    with open_gallery(path, pipeline=fake_pipeline) as g:
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 5
        keys = conn.execute("SELECT name, name_key FROM persons ORDER BY id").fetchall()
        conn.close()
        assert keys == [("Ada", "ada"), ("ada", "ada"), ("Bob", "bob")]
        assert [p.name for p in g.people()] == ["Ada", "Bob", "ada"]
        assert g.person("Ada").id == 1 and g.person("ada").id == 2  # exact names still work
        with pytest.raises(ConflictError, match="differ only in case"):
            g.person("ADA")
        assert g.templates(1)[0].flags == ()  # old templates have no flags
        with pytest.raises(ConflictError):
            g.create_person("aDa")
        merged = g.merge(1, 2)  # the way out: fold one into the other
        assert merged.templates == 2 and g.person("ADA").id == 1


def test_merge_moves_templates_and_photos_and_the_index_follows(
    gallery_location: str, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    key = TemplateKey.generate()
    with open_gallery(gallery_location, pipeline=fake_pipeline, keep_photos=True, key=key) as g:
        obama = g.enroll("Barack Obama", [photo_of(1)]).person
        twin = g.create_person("B. Obama", external_id="x-7", metadata={"source": "hr"})
        g.enroll_person(twin.id, [photo_of(1, variant=1)], force=True)
        g.enroll("Bob", [photo_of(2)])
        assert obama is not None
        (before,) = g.identify(photo_of(1, variant=2))  # the index is built now
        assert before.decision in (IdentDecision.IDENTIFIED, IdentDecision.AMBIGUOUS)

        merged = g.merge(obama.id, twin.id)
        assert merged.id == obama.id and merged.name == "Barack Obama"
        assert merged.templates == 2 and merged.photos == 2
        assert merged.external_id == "x-7" and dict(merged.metadata) == {"source": "hr"}
        with pytest.raises(NotFoundError):
            g.person(twin.id)
        (after,) = g.identify(photo_of(1, variant=2))
        assert after.decision is IdentDecision.IDENTIFIED
        assert after.person is not None and after.person.person_id == obama.id
        for t in g.templates(obama.id):  # kept photos still open under their new owner
            assert t.photo_id is not None and g.photo_bytes(t.photo_id)
        (entry,) = g.audit(action="merge")
        assert entry["person_id"] == obama.id
        assert entry["details"] == {"from_person_id": twin.id, "templates": 1, "photos": 1}
        with pytest.raises(InvalidInputError):
            g.merge(obama.id, obama.id)
        with pytest.raises(NotFoundError):
            g.merge(obama.id, 999)
    # reopened, a fresh index sees the same
    with open_gallery(gallery_location, pipeline=fake_pipeline, key=key) as g:
        (face,) = g.identify(photo_of(1, variant=3))
        assert face.person is not None and face.person.person_id == obama.id
        assert g.count_people() == 2


def test_enrolment_is_still_refused_for_a_duplicate_after_merge(
    gallery: Gallery, photo_of: PhotoOf
) -> None:
    a = gallery.enroll("A", [photo_of(3)]).person
    b = gallery.create_person("B")
    assert a is not None
    gallery.merge(b.id, a.id)
    (outcome,) = gallery.enroll_person(b.id, [photo_of(3)]).outcomes
    assert outcome.status is EnrolStatus.DUPLICATE
