"""The gallery on real photos: enrol, identify, reject, manage, erase, encrypt."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceindex.crypto import KeyMismatchError, KeyRequiredError, TemplateKey
from faceindex.errors import EmbeddingModelMismatchError, NotFoundError
from faceindex.gallery import EnrolStatus, Gallery, open_gallery
from faceindex.pipeline import Pipeline
from faceindex.types import IdentDecision


@pytest.fixture()
def gallery(tmp_path: Path, pipeline: Pipeline) -> Gallery:
    g = open_gallery(tmp_path / "g.db", pipeline=pipeline)
    yield g  # type: ignore[misc]
    g.close()


def test_enrol_and_identify(gallery: Gallery, fixtures_dir: Path) -> None:
    report = gallery.enroll(
        "Barack Obama", [fixtures_dir / "obama.jpg", fixtures_dir / "obama2.jpg"]
    )
    assert [o.status for o in report.outcomes] == [EnrolStatus.ACCEPTED] * 2
    assert report.person is not None and report.person.templates == 2
    gallery.enroll("Alex Lacamoire", [fixtures_dir / "alex-lacamoire.png"])

    (face,) = gallery.identify(fixtures_dir / "obama3.jpg")
    assert face.person is not None and face.person.name == "Barack Obama"
    assert face.similarity is not None and face.similarity >= gallery.threshold
    assert face.runner_up is not None and face.runner_up.name == "Alex Lacamoire"

    (stranger,) = gallery.identify(fixtures_dir / "biden.jpg")
    assert stranger.person is None and stranger.decision is IdentDecision.UNKNOWN
    assert stranger.best is not None  # the closest person is still reported

    faces = gallery.identify(fixtures_dir / "two_people.jpg")
    assert sorted(f.person.name if f.person else "?" for f in faces) == ["?", "Barack Obama"]
    assert gallery.identify(np.full((200, 200, 3), 90, np.uint8)) == ()


def test_enrolment_rejections_have_reasons(
    gallery: Gallery, fixtures_dir: Path, tmp_path: Path, obama_rgb: np.ndarray
) -> None:
    import cv2

    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), (80, 90, 100)).save(blank)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((fixtures_dir / "obama.jpg").read_bytes()[:400])
    blurry = cv2.GaussianBlur(obama_rgb, (0, 0), 6)
    tiny = np.ascontiguousarray(np.asarray(Image.fromarray(obama_rgb).resize((96, 120))))
    report = gallery.enroll(
        "Barack Obama",
        [blank, broken, fixtures_dir / "two_people.jpg", blurry, tiny, tmp_path / "missing.jpg"],
    )
    reasons = [o.reasons for o in report.outcomes]
    assert all(o.status is EnrolStatus.REJECTED for o in report.outcomes)
    assert reasons[0] == ("no_face",)
    assert reasons[1] == ("image_decode_error",)
    assert reasons[2] == ("several_faces",)
    assert "blurry" in reasons[3]
    assert "too_small" in reasons[4]
    assert reasons[5] == ("not_found",)
    assert report.person is None  # nobody is created from rejected photos
    with pytest.raises(NotFoundError):
        gallery.person("Barack Obama")


def test_duplicates_and_cross_person_flag(gallery: Gallery, fixtures_dir: Path) -> None:
    gallery.enroll("Barack Obama", [fixtures_dir / "obama.jpg"])
    again = gallery.enroll("Barack Obama", [fixtures_dir / "obama.jpg"])
    assert again.outcomes[0].status is EnrolStatus.DUPLICATE
    other = gallery.enroll("Joe Biden", [fixtures_dir / "obama.jpg"])
    assert other.outcomes[0].reasons == ("duplicate_of_other_person",)
    # a photo of Obama enrolled as "Joe Biden" is refused: it matches Barack Obama
    wrong = gallery.enroll("Joe Biden", [fixtures_dir / "obama3.jpg"])
    assert wrong.outcomes[0].status is EnrolStatus.REJECTED
    assert wrong.outcomes[0].reasons == ("matches_other_person",)
    conflict = wrong.outcomes[0].conflict
    assert conflict is not None and conflict.name == "Barack Obama"
    ok = gallery.enroll("Joe Biden", [fixtures_dir / "biden.jpg"])
    assert ok.outcomes[0].status is EnrolStatus.ACCEPTED and ok.outcomes[0].flags == ()


def test_people_management_and_audit(gallery: Gallery, fixtures_dir: Path) -> None:
    gallery.enroll("Obama", [fixtures_dir / "obama.jpg", fixtures_dir / "obama2.jpg"])
    gallery.enroll("Biden", [fixtures_dir / "biden.jpg"])
    assert [p.name for p in gallery.people()] == ["Biden", "Obama"]
    assert [p.name for p in gallery.people(search="bam")] == ["Obama"]
    assert [p.name for p in gallery.people(limit=1, offset=1)] == ["Obama"]
    renamed = gallery.rename("Obama", "Barack Obama")
    assert gallery.person(f"#{renamed.id}").name == "Barack Obama"
    (face,) = gallery.identify(fixtures_dir / "obama3.jpg")
    assert face.person is not None and face.person.name == "Barack Obama"
    template = gallery.templates(renamed.id)[0]
    gallery.remove_template(template.id)
    assert gallery.person(renamed.id).templates == 1
    removed = gallery.remove("Barack Obama")
    assert removed == 1
    with pytest.raises(NotFoundError):
        gallery.person("Barack Obama")
    (face,) = gallery.identify(fixtures_dir / "obama3.jpg")
    assert face.person is None or face.person.name != "Barack Obama"
    actions = [e["action"] for e in gallery.audit()]
    assert {"enroll", "identify", "rename", "delete_template", "delete"} <= set(actions)
    deletion = gallery.audit(action="delete")[0]
    assert deletion["person_id"] == renamed.id and deletion["details"] == {"templates": 1}


def _vector_bytes(path: Path) -> list[bytes]:
    conn = sqlite3.connect(path)
    try:
        return [bytes(r[0]) for r in conn.execute("SELECT vector FROM templates")]
    finally:
        conn.close()


def _files_contain(db: Path, needle: bytes) -> bool:
    files = [db, db.with_name(db.name + "-wal")]
    return any(f.exists() and needle in f.read_bytes() for f in files)


def test_erasure_leaves_no_vector_in_the_file(
    tmp_path: Path, pipeline: Pipeline, fixtures_dir: Path
) -> None:
    db = tmp_path / "g.db"
    with open_gallery(db, pipeline=pipeline) as g:
        g.enroll("Obama", [fixtures_dir / "obama.jpg"])
        g.enroll("Biden", [fixtures_dir / "biden.jpg"])
        g.identify(fixtures_dir / "obama3.jpg")  # builds the index
        blobs = _vector_bytes(db)
        assert len(blobs) == 2
        needles = [b[16:48] for b in blobs]
        with sqlite3.connect(db) as other:  # fold the WAL in, from a second connection
            other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert all(_files_contain(db, n) for n in needles)  # the check can see them
        g.remove("Obama")
        (face,) = g.identify(fixtures_dir / "obama3.jpg")
        assert face.person is None or face.person.name != "Obama"
        assert len(g.searcher._sync().index) == 1  # the erased vector left the built index
    assert not _files_contain(db, needles[0])  # freed pages were zeroed
    assert _files_contain(db, needles[1])
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM photos").fetchone()[0] == 1
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_encrypted_templates(tmp_path: Path, pipeline: Pipeline, fixtures_dir: Path) -> None:
    db = tmp_path / "enc.db"
    key = TemplateKey.generate()
    with open_gallery(db, pipeline=pipeline, key=key, keep_photos=True) as g:
        g.enroll("Obama", [fixtures_dir / "obama.jpg"])
        vec = g.pipeline.subject_face(fixtures_dir / "obama.jpg").embedding
        assert vec is not None
        photo_id = g.templates("Obama")[0].photo_id
        assert g.photo_bytes(photo_id) == (fixtures_dir / "obama.jpg").read_bytes()
    raw = np.ascontiguousarray(vec.vector, dtype="<f4").tobytes()
    assert not _files_contain(db, raw[:32])
    assert not _files_contain(db, (fixtures_dir / "obama.jpg").read_bytes()[1000:1064])

    with open_gallery(db, pipeline=pipeline) as g, pytest.raises(KeyRequiredError):
        g.identify(fixtures_dir / "obama3.jpg")
    other_key = TemplateKey.generate()
    with open_gallery(db, pipeline=pipeline, key=other_key) as g, pytest.raises(KeyMismatchError):
        g.identify(fixtures_dir / "obama3.jpg")
    new_key = TemplateKey.generate()
    with open_gallery(db, pipeline=pipeline, key=key) as g:
        assert g.rekey(new_key) == 1
        assert g.key_ids() == {new_key.key_id}
    with open_gallery(db, pipeline=pipeline, key=new_key) as g:
        (face,) = g.identify(fixtures_dir / "obama3.jpg")
        assert face.person is not None and face.person.name == "Obama"
    with open_gallery(db, pipeline=pipeline, key=key) as g, pytest.raises(KeyMismatchError):
        g.identify(fixtures_dir / "obama3.jpg")


def test_models_are_never_mixed(tmp_path: Path, pipeline: Pipeline, fixtures_dir: Path) -> None:
    from faceindex.config import EmbeddingSettings, Settings

    db = tmp_path / "g.db"
    with open_gallery(db, pipeline=pipeline) as g:
        g.enroll("Obama", [fixtures_dir / "obama.jpg"])
    sface = Pipeline.from_settings(Settings(embedding=EmbeddingSettings(embedder="sface")))
    with open_gallery(db, pipeline=sface) as g:
        with pytest.raises(EmbeddingModelMismatchError, match="re-embed"):
            g.identify(fixtures_dir / "obama3.jpg")
        with pytest.raises(EmbeddingModelMismatchError):
            g.enroll("Biden", [fixtures_dir / "biden.jpg"])


def test_not_a_database_is_a_storage_error(tmp_path: Path, pipeline: Pipeline) -> None:
    from faceindex.errors import StorageError

    bad = tmp_path / "junk.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match=r"junk\.db"):
        open_gallery(bad, pipeline=pipeline)


def test_reembed_needs_kept_photos(tmp_path: Path, pipeline: Pipeline, fixtures_dir: Path) -> None:
    from faceindex.config import EmbeddingSettings, Settings
    from faceindex.errors import ConflictError

    sface = Pipeline.from_settings(Settings(embedding=EmbeddingSettings(embedder="sface")))
    kept, bare = tmp_path / "kept.db", tmp_path / "bare.db"
    with open_gallery(bare, pipeline=pipeline) as g:
        g.enroll("Obama", [fixtures_dir / "obama.jpg"])
        with pytest.raises(ConflictError, match="no kept photo"):
            g.reembed(sface)
        assert g.model_id == pipeline.model_id  # untouched
    with open_gallery(kept, pipeline=pipeline, keep_photos=True) as g:
        g.enroll("Obama", [fixtures_dir / "obama.jpg", fixtures_dir / "obama2.jpg"])
        g.enroll("Biden", [fixtures_dir / "biden.jpg"])
        assert g.reembed(sface) == 3
        assert g.model_id == "sface-2021dec"
        assert g.audit(action="reembed")[0]["details"]["templates"] == 3
    with open_gallery(kept, pipeline=sface) as g:
        (face,) = g.identify(fixtures_dir / "obama3.jpg")
        assert face.person is not None and face.person.name == "Obama"
        assert g.person("Obama").templates == 2


def test_reembed_converts_fusion_v1_galleries_without_photos(
    tmp_path: Path, pipeline: Pipeline, fixtures_dir: Path
) -> None:
    """Galleries enrolled with faceindex 0.1's fusion move to the new weights exactly."""
    from faceindex.config import EmbeddingSettings, Settings

    v1 = Pipeline.from_settings(Settings(embedding=EmbeddingSettings(embedder="fusion-v1")))
    db = tmp_path / "old.db"
    with open_gallery(db, pipeline=v1) as g:  # no kept photos
        g.enroll("Obama", [fixtures_dir / "obama.jpg"])
        g.enroll("Biden", [fixtures_dir / "biden.jpg"])
        assert g.model_id == "fusion-sface-dlib-v1"
    with open_gallery(db, pipeline=pipeline) as g:
        assert g.reembed(pipeline) == 2
        assert g.model_id == pipeline.model_id
        assert g.audit(action="reembed")[0]["details"]["from"] == "fusion-sface-dlib-v1"
        (face,) = g.identify(fixtures_dir / "obama3.jpg")
        assert face.person is not None and face.person.name == "Obama"
        probe = pipeline.subject_face(fixtures_dir / "obama.jpg").embedding
        assert probe is not None
        # The converted template of obama.jpg is the new model's embedding of it.
        (best,) = g.identify_vectors(probe.vector[None, :])
        assert best.best is not None and best.best.similarity > 0.9999


def test_create_person_enrol_by_id_and_verify_person(gallery: Gallery, fixtures_dir: Path) -> None:
    from faceindex.errors import ConflictError

    person = gallery.create_person("Obama", external_id="emp-1", metadata={"team": "a"})
    assert person.templates == 0 and person.metadata == {"team": "a"}
    with pytest.raises(ConflictError):
        gallery.create_person("Obama")
    with pytest.raises(NotFoundError, match="no enrolled face"):
        gallery.verify_person(fixtures_dir / "obama3.jpg", person.id)
    report = gallery.enroll_person(
        person.id, [fixtures_dir / "obama.jpg", fixtures_dir / "obama2.jpg"]
    )
    assert report.person is not None and report.person.templates == 2
    assert gallery.verify_person(fixtures_dir / "obama3.jpg", person.id).match
    assert not gallery.verify_person(fixtures_dir / "biden.jpg", "Obama").match
    with pytest.raises(NotFoundError):
        gallery.enroll_person(999, [fixtures_dir / "obama.jpg"])
    assert gallery.audit(action="verify")[0]["decision"] == "no_match"


@pytest.mark.parametrize("backend", ["auto", "exact", "pq-rerank", "hnsw"])
def test_every_index_backend_identifies(
    tmp_path: Path, pipeline: Pipeline, fixtures_dir: Path, backend: str
) -> None:
    with open_gallery(tmp_path / "g.db", pipeline=pipeline, index_backend=backend) as g:
        g.enroll("Obama", [fixtures_dir / "obama.jpg", fixtures_dir / "obama2.jpg"])
        g.enroll("Biden", [fixtures_dir / "biden.jpg"])
        (face,) = g.identify(fixtures_dir / "obama3.jpg")
        assert face.person is not None and face.person.name == "Obama"
        g.remove("Obama")
        (face,) = g.identify(fixtures_dir / "obama3.jpg")
        assert face.person is None
