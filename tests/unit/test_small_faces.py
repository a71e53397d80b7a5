"""A face under the detector's size gate is reported as too small, not as no face
(pipeline.small_face / no_face_error, the enrolment gate), on the fake backends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from faceindex.errors import FaceTooSmallError, NoFaceError
from faceindex.gallery import EnrolStatus, open_gallery
from faceindex.io.image import load_image
from faceindex.pipeline import Pipeline
from faceindex.testing.fakes import FakeDetector, FakeEmbedder
from faceindex.types import Face, ImageArray

PhotoOf = Callable[..., Path]


class GatedDetector(FakeDetector):
    """The fake detector with a size gate it can report on, as YuNet and dlib do."""

    def detect_small(self, image: ImageArray) -> tuple[Face, ...]:
        everything = FakeDetector(min_face_px=1).detect(image)
        return tuple(f for f in everything if min(f.bbox.width, f.bbox.height) < self.min_face_px)


def _pipeline(min_face_px: int) -> Pipeline:
    return Pipeline(detector=GatedDetector(min_face_px=min_face_px), embedder=FakeEmbedder())


def test_a_face_under_the_gate_is_too_small_with_both_sizes(photo_of: PhotoOf) -> None:
    rgb = load_image(photo_of(1))
    (face,) = _pipeline(1).detect(rgb)
    px = int(min(face.bbox.width, face.bbox.height))
    strict = _pipeline(px + 10)
    assert strict.detect(rgb) == ()
    small = strict.small_face(rgb)
    assert small is not None and strict.too_small_text(small) == (
        f"face too small ({px} px, need {px + 10})"
    )
    with pytest.raises(FaceTooSmallError) as caught:
        strict.subject_face(rgb)
    assert caught.value.code == "face_too_small"
    assert caught.value.details["face_px"] == px
    assert caught.value.details["min_face_px"] == px + 10
    assert isinstance(caught.value, NoFaceError)  # callers of no_face still catch it


def test_no_face_at_all_stays_no_face(photo_of: PhotoOf) -> None:
    rgb = load_image(photo_of())
    pipeline = _pipeline(20)
    assert pipeline.small_face(rgb) is None
    with pytest.raises(NoFaceError) as caught:
        pipeline.subject_face(rgb)
    assert type(caught.value) is NoFaceError
    plain = Pipeline(detector=FakeDetector(min_face_px=10_000), embedder=FakeEmbedder())
    assert plain.small_face(load_image(photo_of(1))) is None  # cannot tell: no detect_small


def test_enrolment_rejects_a_too_small_face_with_its_message(
    photo_of: PhotoOf, tmp_path: Path
) -> None:
    pipeline = _pipeline(10_000)
    with open_gallery(tmp_path / "g.db", pipeline=pipeline) as g:
        (outcome,) = g.enroll("Ada", [photo_of(1)]).outcomes
    assert outcome.status is EnrolStatus.REJECTED and outcome.reasons == ("face_too_small",)
    assert outcome.message is not None and outcome.message.endswith("px, need 10000)")
    assert outcome.as_dict()["message"] == outcome.message
