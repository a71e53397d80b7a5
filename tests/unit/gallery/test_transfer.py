"""Export a gallery to one file and import it (faceindex.gallery.transfer), on the fakes."""

from __future__ import annotations

import dataclasses
import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from faceindex.crypto import TemplateKey
from faceindex.errors import EmbeddingModelMismatchError, InvalidInputError
from faceindex.gallery import open_gallery
from faceindex.gallery.transfer import read_export
from faceindex.pipeline import Pipeline
from faceindex.testing.fakes import FakeDetector, FakeEmbedder
from faceindex.types import IdentDecision

PhotoOf = Callable[..., Path]


def _source(
    tmp_path: Path,
    pipeline: Pipeline,
    photo_of: PhotoOf,
    *,
    photos: bool = False,
    key: TemplateKey | None = None,
) -> bytes:
    """A gallery of Ada (2 faces, metadata, external id) and Bob (1 forced face), exported."""
    with open_gallery(tmp_path / "src.db", pipeline=pipeline, keep_photos=True, key=key) as g:
        g.enroll("Ada", [photo_of(1), photo_of(1, variant=1)], external_id="a-1", metadata={"k": 1})
        bob = g.create_person("Bob")
        g.enroll_person(bob.id, [photo_of(1, variant=2)], force=True)
        return g.export(photos=photos)


def test_round_trip_keeps_people_templates_and_flags(
    gallery_location: str, tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    data = _source(tmp_path, fake_pipeline, photo_of)
    header, _, payload = data.partition(b"\n")
    assert json.loads(header) == {
        "format": "faceindex-gallery",
        "version": 1,
        "sealed": False,
        "key_id": None,
    }
    document = json.loads(gzip.decompress(payload))
    assert document["model_id"] == "fake-v1" and document["dim"] == 48
    assert all(t["photo"] is None for p in document["people"] for t in p["templates"])

    with open_gallery(gallery_location, pipeline=fake_pipeline) as g:
        report = g.import_from(data)
        assert report.as_dict() == {
            "people_created": 2,
            "people_merged": 0,
            "templates_added": 3,
            "skipped": 0,
        }
        ada = g.person("Ada")
        assert (ada.external_id, dict(ada.metadata), ada.templates) == ("a-1", {"k": 1}, 2)
        (bob_face,) = g.templates("Bob")
        assert bob_face.flags == (f"matches_other_person:{g.person('Ada').id}",)
        (face,) = g.identify(photo_of(1, variant=3))
        assert face.decision is not IdentDecision.UNKNOWN
        # Importing again adds nothing: every photo is already enrolled.
        again = g.import_from(data)
        assert again.as_dict() == {
            "people_created": 0,
            "people_merged": 2,
            "templates_added": 0,
            "skipped": 3,
        }
        actions = [e["action"] for e in g.audit()]
        assert actions.count("import") == 2


def test_import_merges_by_name_regardless_of_case(
    gallery_location: str, tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    data = _source(tmp_path, fake_pipeline, photo_of)
    with open_gallery(gallery_location, pipeline=fake_pipeline) as g:
        ada = g.create_person("ADA", external_id="other")
        g.create_person("Carl", external_id="a-1")  # Ada's external id is taken here
        report = g.import_from(data)
        assert (report.people_created, report.people_merged) == (1, 1)
        assert g.person(ada.id).templates == 2 and g.person(ada.id).external_id == "other"
        assert g.count_people() == 3


def test_photos_travel_only_when_asked(
    gallery_location: str, tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    data = _source(tmp_path, fake_pipeline, photo_of, photos=True)
    with open_gallery(gallery_location, pipeline=fake_pipeline) as g:
        g.import_from(data)
        (first, _) = g.templates("Ada")
        assert first.photo_id is not None
        assert g.photo_bytes(first.photo_id) == photo_of(1).read_bytes()


def test_sealed_export_needs_the_same_key(
    gallery_location: str, tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    key = TemplateKey.generate()
    data = _source(tmp_path, fake_pipeline, photo_of, key=key)
    header = json.loads(data.partition(b"\n")[0])
    assert header["sealed"] is True and header["key_id"] == key.key_id
    assert b"Ada" not in data  # names, metadata and vectors are all inside the seal
    with pytest.raises(InvalidInputError, match="encrypted"):
        read_export(data, None)
    with pytest.raises(InvalidInputError, match="key id"):
        read_export(data, TemplateKey.generate())
    tampered = data[:-5] + bytes(5)
    with pytest.raises(InvalidInputError, match="damaged or was altered"):
        read_export(tampered, key)
    with open_gallery(gallery_location, pipeline=fake_pipeline, key=key) as g:
        assert g.import_from(data).templates_added == 3
        assert g.key_ids() == {key.key_id}


def test_a_model_mismatch_is_refused_before_anything_is_written(
    gallery_location: str, tmp_path: Path, fake_pipeline: Pipeline, photo_of: PhotoOf
) -> None:
    data = _source(tmp_path, fake_pipeline, photo_of)
    other = FakeEmbedder()
    other.spec = dataclasses.replace(other.spec, model_id="other-v2")
    pipeline = Pipeline(detector=FakeDetector(), embedder=other)
    with open_gallery(gallery_location, pipeline=pipeline) as g:
        with pytest.raises(EmbeddingModelMismatchError, match="'fake-v1' templates"):
            g.import_from(data)
        assert g.count_people() == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no header"),
        (b"hello\n", "bad header"),
        (b'{"format": "zip"}\n', "not a faceindex gallery export"),
        (b'{"format": "faceindex-gallery", "version": 9}\n', "version 9"),
        (b'{"format": "faceindex-gallery", "version": 1}\nnot gzip', "damaged"),
    ],
)
def test_not_an_export_is_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        read_export(data, None)
