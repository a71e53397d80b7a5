"""The pipeline's crop fallback on the fake backends: a small, square image in which the
detector finds nothing is taken whole as its face, marked as such; anything else still has
no face (the same on real models: tests/integration/test_crop_and_background_faces.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from faceindex.alignment import ARCFACE_112
from faceindex.config import DetectionSettings, EmbeddingSettings, Settings
from faceindex.errors import NoFaceError
from faceindex.gallery import EnrolStatus, open_gallery
from faceindex.pipeline import (
    CROP_FALLBACK_SCORE,
    Pipeline,
    crop_fallback_face,
    is_crop_fallback,
    looks_like_face_crop,
)
from faceindex.testing import FakeDetector, FakeEmbedder, synthetic_photo
from faceindex.types import Face, ImageArray, LandmarkScheme


class MissesCrops:
    """The fake detector, blind to images of at most 160 px a side (as detectors trained
    on faces with context around them are to tight crops)."""

    name = "misses-crops"

    def __init__(self) -> None:
        self.inner = FakeDetector()

    def warm_up(self) -> None:
        """Nothing to load."""

    def detect(self, image: ImageArray) -> tuple[Face, ...]:
        if max(image.shape[:2]) <= 160:
            return ()
        return self.inner.detect(image)


def face_crop(person: int, variant: int = 0) -> ImageArray:
    """The face square of a synthetic photo of ``person``, cut out tight (~120 px a side)."""
    photo = synthetic_photo([person], variant=variant)
    (face,) = FakeDetector().detect(photo)
    b = face.bbox
    return np.ascontiguousarray(photo[int(b.y1) : int(b.y2), int(b.x1) : int(b.x2)])


@pytest.fixture()
def pipeline() -> Pipeline:
    return Pipeline(detector=MissesCrops(), embedder=FakeEmbedder())


def test_a_tight_crop_is_its_own_face_and_verifies(pipeline: Pipeline) -> None:
    crop = face_crop(7)
    assert looks_like_face_crop(crop)
    (face,) = pipeline.detect(crop)
    h, w = crop.shape[:2]
    assert is_crop_fallback(face) and face.score == CROP_FALLBACK_SCORE == 0.0
    assert face.bbox.as_list() == [0.0, 0.0, float(w), float(h)]
    assert face.landmarks is not None and face.landmarks.scheme is LandmarkScheme.FIVE_POINT
    assert face.quality is not None and face.quality.acceptable  # frontal, inside, sharp
    (analysed,) = pipeline.analyze(crop)
    assert analysed.embedding is not None and is_crop_fallback(analysed)
    assert pipeline.subject_face(crop).embedding is not None
    assert pipeline.verify(crop, synthetic_photo([7], variant=1)).match
    assert not pipeline.verify(crop, synthetic_photo([8], variant=1)).match


def test_template_landmarks_follow_the_crop_shape() -> None:
    square = crop_fallback_face(np.zeros((112, 112, 3), np.uint8))
    assert square.landmarks is not None
    np.testing.assert_allclose(square.landmarks.points, ARCFACE_112, atol=1e-4)
    double = crop_fallback_face(np.zeros((224, 224, 3), np.uint8))
    assert double.landmarks is not None
    np.testing.assert_allclose(double.landmarks.points, ARCFACE_112 * 2, atol=1e-3)
    # 96x112 (SphereFace/CosFace crops): the ArcFace template 8 px to the left.
    narrow = crop_fallback_face(np.zeros((112, 96, 3), np.uint8))
    assert narrow.landmarks is not None and narrow.bbox.as_list() == [0.0, 0.0, 96.0, 112.0]
    np.testing.assert_allclose(narrow.landmarks.points, ARCFACE_112 - [8.0, 0.0], atol=1e-4)
    assert all(is_crop_fallback(f) for f in (square, double, narrow))


def test_a_detection_is_never_taken_for_a_fallback(fake_pipeline: Pipeline) -> None:
    faces = fake_pipeline.detect(synthetic_photo([1, 2]))
    assert len(faces) == 2 and not any(is_crop_fallback(f) for f in faces)
    image = np.zeros((112, 112, 3), np.uint8)
    fallback = crop_fallback_face(image)
    # Same box and landmarks but a detector's score, or a score of 0 elsewhere: detections.
    assert not is_crop_fallback(dataclasses.replace(fallback, score=0.9))
    moved = dataclasses.replace(fallback, bbox=dataclasses.replace(fallback.bbox, x1=1.0))
    assert not is_crop_fallback(moved)
    assert not is_crop_fallback(dataclasses.replace(fallback, landmarks=None))


@pytest.mark.parametrize(
    ("width", "height", "crop"),
    [
        (112, 112, True),
        (96, 112, True),
        (150, 150, True),
        (160, 128, True),  # aspect 1.25
        (128, 160, True),  # aspect 0.8
        (161, 161, False),  # too large for an aligned crop
        (160, 120, False),  # 4:3: a thumbnail, not a crop
        (120, 160, False),
        (640, 480, False),
    ],
)
def test_what_looks_like_a_crop(width: int, height: int, crop: bool) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    assert looks_like_face_crop(noise) is crop
    assert not looks_like_face_crop(np.full((height, width, 3), 90, np.uint8))  # flat


def test_a_blank_crop_sized_image_has_no_face(pipeline: Pipeline) -> None:
    flat = np.full((112, 112, 3), 128, np.uint8)
    nearly = flat.copy()
    nearly[50:60, 50:60] = 140  # a smudge: grey levels spread by ~1
    for image in (flat, nearly):
        assert pipeline.detect(image) == ()
        with pytest.raises(NoFaceError):
            pipeline.subject_face(image)


def test_no_face_stays_no_face(pipeline: Pipeline) -> None:
    blank = np.full((480, 640, 3), 128, np.uint8)
    assert pipeline.detect(blank) == () and pipeline.analyze(blank) == ()
    with pytest.raises(NoFaceError):
        pipeline.subject_face(blank)
    thumbnail = np.ascontiguousarray(face_crop(7)[:90, :])  # 4:3: not a crop
    assert pipeline.detect(thumbnail) == ()


def test_the_fallback_can_be_switched_off() -> None:
    off = Pipeline(detector=MissesCrops(), embedder=FakeEmbedder(), crop_fallback=False)
    assert off.detect(face_crop(7)) == ()
    with pytest.raises(NoFaceError):
        off.subject_face(face_crop(7))
    settings = Settings(
        detection=DetectionSettings(detector="fake"), embedding=EmbeddingSettings(embedder="fake")
    )
    assert Pipeline.from_settings(settings).crop_fallback is True
    if hasattr(settings.detection, "crop_fallback"):  # DetectionSettings.crop_fallback
        no = dataclasses.replace(settings.detection, crop_fallback=False)
        built = Pipeline.from_settings(dataclasses.replace(settings, detection=no))
        assert built.crop_fallback is False


def test_enrolling_a_crop_is_flagged(pipeline: Pipeline, tmp_path: Path) -> None:
    with open_gallery(tmp_path / "g.db", pipeline=pipeline) as gallery:
        (outcome,) = gallery.enroll("Ada", [face_crop(7)]).outcomes
        assert outcome.status is EnrolStatus.ACCEPTED and outcome.flags == ("crop_fallback",)
        (found,) = gallery.identify(synthetic_photo([7], variant=2))
        assert found.person is not None and found.person.name == "Ada"
