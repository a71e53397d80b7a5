"""The gallery's logic on the fake backends: enrolment gate, open-set search, records,
audit, erasure and encryption, in milliseconds (the same behaviour on real models is in
tests/integration/test_gallery.py)."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from faceindex.config import PrivacySettings, SearchSettings, Settings
from faceindex.crypto import KeyMismatchError, KeyRequiredError, TemplateKey
from faceindex.errors import (
    ConfigError,
    ConflictError,
    EmbeddingModelMismatchError,
    NotFoundError,
)
from faceindex.gallery import EnrolStatus, Gallery, open_gallery, set_actor
from faceindex.pipeline import Pipeline
from faceindex.testing.fakes import FakeDetector, FakeEmbedder
from faceindex.types import IdentDecision

PhotoOf = Callable[..., Path]


@pytest.fixture()
def gallery(gallery_location: str, fake_pipeline: Pipeline) -> Iterator[Gallery]:
    """A gallery on each store: a SQLite file and a PostgreSQL database (see pg_server)."""
    with open_gallery(gallery_location, pipeline=fake_pipeline) as g:
        yield g


def test_enrol_then_identify_names_people_and_keeps_strangers_unknown(
    gallery: Gallery, photo_of: PhotoOf
) -> None:
    report = gallery.enroll("Ada", [photo_of(1), photo_of(1, variant=1)])
    assert [o.status for o in report.outcomes] == [EnrolStatus.ACCEPTED] * 2
    assert report.person is not None and report.person.templates == 2
    gallery.enroll("Bob", [photo_of(2)])

    ada, stranger = gallery.identify(photo_of(1, 99, variant=2))
    assert ada.decision is IdentDecision.IDENTIFIED
    assert ada.person is not None and ada.person.name == "Ada" and ada.similarity is not None
    assert ada.runner_up is not None and ada.runner_up.name == "Bob"
    assert ada.bbox is not None and ada.quality is not None
    assert stranger.person is None and stranger.decision is IdentDecision.UNKNOWN
    assert stranger.best is not None  # the closest person is still reported
    assert stranger.best.similarity < gallery.threshold


def test_enrolment_gate_gives_reasons_per_photo(
    gallery: Gallery, photo_of: PhotoOf, tmp_path: Path
) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    report = gallery.enroll(
        "Ada", [photo_of(1, 2), photo_of(), corrupt, tmp_path / "missing.jpg", photo_of(1)]
    )
    reasons = [(o.status, o.reasons) for o in report.outcomes]
    assert reasons[:4] == [
        (EnrolStatus.REJECTED, ("several_faces",)),
        (EnrolStatus.REJECTED, ("no_face",)),
        (EnrolStatus.REJECTED, ("image_decode_error",)),
        (EnrolStatus.REJECTED, ("not_found",)),
    ]
    assert reasons[4][0] is EnrolStatus.ACCEPTED
    again = gallery.enroll("Ada", [photo_of(1)])
    assert again.outcomes[0].reasons == ("already_enrolled",)
    other = gallery.enroll("Bob", [photo_of(1)])
    assert other.outcomes[0].reasons == ("duplicate_of_other_person",)
    assert other.person is None  # nobody is created from rejected photos


def test_photo_matching_another_person_is_refused_unless_forced(
    gallery: Gallery, photo_of: PhotoOf
) -> None:
    gallery.enroll("Ada", [photo_of(1)])
    ada = gallery.person("Ada").id
    refused = gallery.enroll("Not Ada", [photo_of(1, variant=3)])
    (outcome,) = refused.outcomes
    assert outcome.status is EnrolStatus.REJECTED
    assert outcome.reasons == ("matches_other_person",)
    assert outcome.conflict is not None and outcome.conflict.person_id == ada
    assert outcome.conflict.name == "Ada" and outcome.conflict.similarity > 0.9
    assert outcome.as_dict()["conflict"] == {
        "person_id": ada,
        "name": "Ada",
        "similarity": round(outcome.conflict.similarity, 6),
    }
    assert refused.person is None  # nobody created from the refused photo

    # An existing person with templates: a face closer to another person is refused too.
    gallery.enroll("Bob", [photo_of(2)])
    (again,) = gallery.enroll_person("Bob", [photo_of(1, variant=4)]).outcomes
    assert again.reasons == ("matches_other_person",) and again.conflict is not None
    assert gallery.person("Bob").templates == 1

    (forced,) = gallery.enroll_person("Bob", [photo_of(1, variant=4)], force=True).outcomes
    assert forced.status is EnrolStatus.ACCEPTED and forced.conflict is not None
    assert forced.flags == (f"matches_other_person:{ada}",)
    (_, flagged) = gallery.templates("Bob")
    assert flagged.id == forced.template_id and flagged.flags == forced.flags
    (entry,) = gallery.audit(action="enroll", person_id=gallery.person("Bob").id, limit=1)
    assert entry["decision"] == "forced"
    assert entry["details"]["conflict"]["person_id"] == ada
    gallery.remove_template(flagged.id)  # found by its flag, removed
    assert gallery.person("Bob").templates == 1


def test_verify_person_goes_through_the_search(gallery: Gallery, photo_of: PhotoOf) -> None:
    ada = gallery.enroll("Ada", [photo_of(1), photo_of(1, variant=1)]).person
    assert ada is not None
    gallery.enroll("Bob", [photo_of(2)])
    assert gallery.verify_person(photo_of(1, variant=4), ada.id).match
    assert not gallery.verify_person(photo_of(2, variant=4), "Ada").match
    empty = gallery.create_person("Nobody Yet")
    with pytest.raises(NotFoundError, match="no enrolled face"):
        gallery.verify_person(photo_of(1), empty.id)
    actions = [e["action"] for e in gallery.audit()]
    assert actions.count("verify") == 2


def test_records_rename_update_remove_and_audit_actor(gallery: Gallery, photo_of: PhotoOf) -> None:
    person = gallery.enroll("Ada", [photo_of(1)]).person
    assert person is not None
    set_actor("key:ops")
    try:
        renamed = gallery.rename(person.id, "Ada Lovelace")
        updated = gallery.update(renamed.id, external_id="E-1", metadata={"team": "math"})
    finally:
        set_actor(None)
    assert updated.name == "Ada Lovelace" and updated.metadata == {"team": "math"}
    assert gallery.person(f"#{person.id}").external_id == "E-1"
    assert gallery.count_people() == 1 and gallery.count_people(search="love") == 1
    assert [p.name for p in gallery.people(search="zzz")] == []
    with pytest.raises(ConflictError):
        gallery.create_person("Ada Lovelace")
    events = gallery.audit(person_id=person.id)
    assert [e["action"] for e in events][:2] == ["update", "rename"]
    assert {e["actor"] for e in events[:2]} == {"key:ops"}
    gallery.record("anonymize", details={"faces": 3})
    assert gallery.audit(action="anonymize")[0]["details"] == {"faces": 3}
    assert gallery.remove(person.id) == 1
    with pytest.raises(NotFoundError):
        gallery.person(person.id)


def test_erasure_leaves_the_index_and_the_file(
    fake_pipeline: Pipeline, photo_of: PhotoOf, tmp_path: Path
) -> None:
    # SQLite only (the file's bytes); PostgreSQL: test_postgres_store.py
    gallery = open_gallery(tmp_path / "g.db", pipeline=fake_pipeline)
    gallery.enroll("Ada", [photo_of(1)])
    gallery.enroll("Bob", [photo_of(2)])
    assert gallery.identify(photo_of(1, variant=1))[0].person is not None  # index built
    with sqlite3.connect(tmp_path / "g.db") as conn:
        (blob,) = conn.execute(
            "SELECT vector FROM templates t JOIN persons p ON p.id = t.person_id"
            " WHERE p.name = 'Ada'"
        ).fetchone()
    gallery.remove("Ada")
    (face,) = gallery.identify(photo_of(1, variant=1))
    assert face.person is None or face.person.name != "Ada"
    data = (tmp_path / "g.db").read_bytes()
    wal = tmp_path / "g.db-wal"
    data += wal.read_bytes() if wal.exists() else b""
    assert bytes(blob)[8:40] not in data
    gallery.close()


def test_a_second_gallery_instance_sees_new_enrolments(
    gallery_location: str, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    with (
        open_gallery(gallery_location, pipeline=fake_pipeline) as writer,
        open_gallery(gallery_location, pipeline=fake_pipeline) as reader,
    ):
        writer.enroll("Ada", [photo_of(1)])
        assert reader.identify(photo_of(1, variant=1))[0].person is not None
        writer.enroll("Bob", [photo_of(2)])  # replayed from the template log
        (bob,) = reader.identify(photo_of(2, variant=1))
        assert bob.person is not None and bob.person.name == "Bob"
        writer.remove("Bob")
        (gone,) = reader.identify(photo_of(2, variant=1))
        assert gone.person is None


def test_identify_vectors_is_the_video_identifier(gallery: Gallery, photo_of: PhotoOf) -> None:
    gallery.enroll("Ada", [photo_of(1)])
    faces = gallery.pipeline.analyze(photo_of(1, 2, variant=1))
    vectors = np.stack([f.embedding.vector for f in faces if f.embedding is not None])
    ada, other = gallery.identify_vectors(vectors)
    assert ada.person is not None and ada.person.name == "Ada" and ada.bbox is None
    assert other.person is None
    with pytest.raises(Exception, match="shape"):
        gallery.identify_vectors(np.zeros((1, 7), dtype=np.float32))


def test_encrypted_gallery_needs_its_key(
    gallery_location: str, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    key, other = TemplateKey.generate(), TemplateKey.generate()
    db = gallery_location
    with open_gallery(db, pipeline=fake_pipeline, key=key, keep_photos=True) as g:
        g.enroll("Ada", [photo_of(1)])
        assert g.key_ids() == {key.key_id}
        (template,) = g.templates("Ada")
        assert template.encrypted and template.photo_id is not None
        assert g.photo_bytes(template.photo_id) == photo_of(1).read_bytes()
    with open_gallery(db, pipeline=fake_pipeline) as g, pytest.raises(KeyRequiredError):
        g.identify(photo_of(1, variant=1))
    with open_gallery(db, pipeline=fake_pipeline, key=other) as g, pytest.raises(KeyMismatchError):
        g.identify(photo_of(1, variant=1))
    with open_gallery(db, pipeline=fake_pipeline, key=key) as g:
        assert g.rekey(other) == 1
        assert g.key_ids() == {other.key_id}
        assert g.audit(action="keys_rotate")[0]["details"]["key_id"] == other.key_id
    settings = Settings(privacy=PrivacySettings(key=other.to_text()))
    with open_gallery(db, settings=settings, pipeline=fake_pipeline) as g:
        (face,) = g.identify(photo_of(1, variant=1))
        assert face.person is not None and face.person.name == "Ada"
        assert g.rekey(None) == 1 and g.key_ids() == {None}


def test_a_gallery_refuses_another_models_templates(gallery: Gallery, photo_of: PhotoOf) -> None:
    gallery.enroll("Ada", [photo_of(1)])
    other_embedder = FakeEmbedder()
    other_embedder.spec = dataclasses.replace(FakeEmbedder.spec, model_id="fake-v2")
    other = Pipeline(detector=FakeDetector(), embedder=other_embedder)
    with open_gallery(gallery.location, pipeline=other) as g:
        with pytest.raises(EmbeddingModelMismatchError):
            g.identify(photo_of(1))
        with pytest.raises(ConflictError, match="no kept photo"):
            g.reembed(other)


def test_reembedding_moves_a_gallery_with_kept_photos(
    gallery_location: str, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    db = gallery_location
    with open_gallery(db, pipeline=fake_pipeline, keep_photos=True) as g:
        g.enroll("Ada", [photo_of(1), photo_of(1, variant=1)])
        other_embedder = FakeEmbedder()
        other_embedder.spec = dataclasses.replace(FakeEmbedder.spec, model_id="fake-v2")
        other = Pipeline(detector=FakeDetector(), embedder=other_embedder)
        assert g.reembed(other) == 2
        assert g.model_id == "fake-v2"
        (face,) = g.identify(photo_of(1, variant=2))
        assert face.person is not None and face.person.name == "Ada"


def test_settings_reach_the_gallery(
    tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    settings = Settings.from_env(
        {
            "FACEINDEX_GALLERY": str(tmp_path / "from-env.db"),
            "FACEINDEX_SEARCH__THRESHOLD": "-1",
            "FACEINDEX_SEARCH__RULE": "max",
        }
    )
    with open_gallery(settings=settings, pipeline=fake_pipeline) as g:
        assert g.path == tmp_path / "from-env.db"
        assert g.threshold == -1.0 and str(g.rule) == "max"
        g.enroll("Ada", [photo_of(1)])
        (face,) = g.identify(photo_of(99))
        assert face.decision is IdentDecision.IDENTIFIED  # a stranger passes a threshold of -1
    with pytest.raises(ConfigError, match="aggregation rule"):
        Settings.from_env({"FACEINDEX_SEARCH__RULE": "median"})
    with pytest.raises(ConfigError):
        SearchSettings(top_k=0)


def test_listing_people_builds_no_pipeline(gallery_location: str) -> None:
    with open_gallery(gallery_location) as g:
        g.create_person("Ada")
        assert [p.name for p in g.people()] == ["Ada"]
        assert g._pipeline is None  # records need no model


def test_a_folder_is_not_a_photo_and_conflicts_quote_no_sql(
    gallery: Gallery, photo_of: PhotoOf, tmp_path: Path
) -> None:
    folder = tmp_path / "a folder"
    folder.mkdir()
    (outcome,) = gallery.enroll("Ada", [folder]).outcomes
    assert outcome.reasons == ("invalid_input",)
    gallery.create_person("Ada")
    bob = gallery.create_person("Bob")
    with pytest.raises(ConflictError) as caught:
        gallery.rename(bob.id, "Ada")
    assert "constraint" not in caught.value.message.lower()
    assert "UNIQUE" not in caught.value.message


def test_a_face_unlike_its_own_persons_faces_is_refused_unless_forced(
    gallery: Gallery, photo_of: PhotoOf
) -> None:
    assert gallery.enroll("Ann", [photo_of(1), photo_of(1, variant=1)]).person is not None
    (wrong,) = gallery.enroll("Ann", [photo_of(2)]).outcomes  # nobody else is enrolled
    assert wrong.status is EnrolStatus.REJECTED and wrong.reasons == ("unlike_this_person",)
    assert wrong.conflict is None and gallery.person("Ann").templates == 2
    (own,) = gallery.enroll("Ann", [photo_of(1, variant=2)]).outcomes
    assert own.status is EnrolStatus.ACCEPTED and own.flags == ()
    (forced,) = gallery.enroll("Ann", [photo_of(2)], force=True).outcomes
    assert forced.status is EnrolStatus.ACCEPTED and forced.flags == ("unlike_this_person",)
    assert [t.flags for t in gallery.templates("Ann")].count(("unlike_this_person",)) == 1
