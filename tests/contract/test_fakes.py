"""What logic tests may rely on from the fake backends and their synthetic photos."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from faceindex.config import Settings
from faceindex.detection import DETECTORS
from faceindex.embedding import EMBEDDERS
from faceindex.pipeline import Pipeline
from faceindex.quality import assess
from faceindex.testing import (
    FAKE_SPEC,
    FakeDetector,
    FakeEmbedder,
    synthetic_photo,
    synthetic_photo_bytes,
)
from faceindex.testing.synthetic import BACKGROUND, MIN_FACE_PX
from faceindex.types import Decision, LandmarkScheme


def test_synthetic_photo_layout() -> None:
    photo = synthetic_photo([1, 2], variant=3, size=(500, 400))
    assert photo.shape == (400, 500, 3) and photo.dtype == np.uint8
    np.testing.assert_array_equal(synthetic_photo([1, 2], variant=3, size=(500, 400)), photo)
    blank = synthetic_photo([])
    assert (blank == np.array(BACKGROUND, np.uint8)).all()
    with pytest.raises(ValueError, match="do not fit"):
        synthetic_photo(range(10), size=(300, 300))


def test_detector_finds_each_face_exactly_largest_first() -> None:
    people = [5, 6, 7, 8]
    faces = FakeDetector().detect(synthetic_photo(people, variant=2))
    assert len(faces) == len(people)
    sides = [f.bbox.width for f in faces]
    assert sides == sorted(sides, reverse=True) and min(sides) >= MIN_FACE_PX
    assert all(f.bbox.width == f.bbox.height for f in faces)
    assert all(f.score == pytest.approx(0.99) for f in faces)
    assert all(f.landmarks and f.landmarks.scheme is LandmarkScheme.FIVE_POINT for f in faces)
    assert FakeDetector(min_face_px=MIN_FACE_PX + 100).detect(synthetic_photo([1])) == ()
    assert FakeDetector(score_threshold=0.995).detect(synthetic_photo([1])) == ()


@pytest.mark.parametrize("variant", range(6))
def test_synthetic_faces_pass_every_quality_check(variant: int) -> None:
    photo = synthetic_photo([variant, 100 + variant, 200 + variant], variant=variant)
    for face in FakeDetector().detect(photo):
        quality = assess(photo, face)
        assert quality.issues == (), quality
        assert abs(quality.yaw) < 5 and abs(quality.pitch) < 5 and abs(quality.roll) < 5


@pytest.mark.slow  # scores 800 synthetic faces (a second)
def test_one_person_matches_and_different_people_do_not() -> None:
    detector, embedder = FakeDetector(), FakeEmbedder()
    people, variants = range(40), range(3)
    vectors = {}
    for person, variant in itertools.product(people, variants):
        photo = synthetic_photo([person], variant=variant)
        vectors[person, variant] = embedder.embed(photo, detector.detect(photo))[0]
    same = [vectors[p, a] @ vectors[p, b] for p in people for a, b in [(0, 1), (0, 2), (1, 2)]]
    other = [vectors[p, 0] @ vectors[q, 1] for p in people for q in people if p < q]
    assert min(same) > 0.99 > FAKE_SPEC.threshold
    assert max(other) < FAKE_SPEC.threshold - 0.2


def test_embedder_options_and_odd_boxes() -> None:
    photo = synthetic_photo([3, 4])
    faces = FakeDetector().detect(photo)
    flipped = FakeEmbedder(flip=True, threads=4, cache_dir=None).embed(photo, faces)
    np.testing.assert_allclose(np.linalg.norm(flipped, axis=1), 1.0, atol=1e-6)
    blank = np.full((100, 100, 3), 128, np.uint8)
    flat = FakeEmbedder().embed(blank, faces)  # boxes over flat or missing pixels
    np.testing.assert_allclose(np.linalg.norm(flat, axis=1), 1.0, atol=1e-6)


def test_pipeline_runs_on_fakes_in_milliseconds() -> None:
    pipeline = Pipeline(detector=FakeDetector(), embedder=FakeEmbedder())
    same = pipeline.verify(synthetic_photo_bytes([9, 1]), synthetic_photo_bytes([9], variant=4))
    assert same.decision is Decision.MATCH and same.model_id == "fake-v1"
    other = pipeline.verify(synthetic_photo_bytes([9]), synthetic_photo_bytes([10]))
    assert other.decision is Decision.NO_MATCH
    faces = pipeline.analyze(synthetic_photo_bytes([1, 2, 3], variant=5))
    assert len(faces) == 3
    assert all(f.embedding is not None and f.quality and f.quality.acceptable for f in faces)


def test_fakes_are_registered_and_selectable_by_settings() -> None:
    assert DETECTORS.get("fake") is FakeDetector and EMBEDDERS.get("fake") is FakeEmbedder
    settings = Settings.from_env(
        {"FACEINDEX_DETECTION__DETECTOR": "fake", "FACEINDEX_EMBEDDING__EMBEDDER": "fake"}
    )
    pipeline = Pipeline.from_settings(settings)
    assert pipeline.model_id == "fake-v1" and pipeline.threshold == FAKE_SPEC.threshold
