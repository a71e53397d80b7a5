"""The quality score of an embedded face: the detector's confidence with SFace's raw
norm (:func:`faceindex.quality.embedding_quality_score`), given by the pipeline to every
face it embeds when the embedder reports the norm (fake backends)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from faceindex.embedding import NormReportingEmbedder
from faceindex.pipeline import Pipeline
from faceindex.quality import (
    EMBEDDING_QUALITY_FIT,
    UNSCORED_DETECTOR_INPUT,
    embedding_quality_score,
    quality_score,
)
from faceindex.testing.fakes import FakeDetector, FakeEmbedder
from faceindex.testing.synthetic import synthetic_photo
from faceindex.types import Face, FloatArray, ImageArray


def test_the_score_of_clean_and_damaged_faces() -> None:
    # the worked examples of the docstring (YuNet's confidence, SFace's raw norm)
    assert embedding_quality_score(0.94, 12.0) == pytest.approx(0.972, abs=0.002)
    assert embedding_quality_score(0.89, 7.8) == pytest.approx(0.197, abs=0.002)
    bias, w_det, w_norm = EMBEDDING_QUALITY_FIT
    z = bias + w_det * 0.9 + w_norm * math.log(10.0)
    assert embedding_quality_score(0.9, 10.0) == pytest.approx(1 / (1 + math.exp(-z)))


def test_the_score_rises_with_confidence_and_norm() -> None:
    grid = [(d, n) for d in (0.6, 0.8, 0.9, 0.99) for n in (4.0, 8.0, 11.0, 14.0)]
    for d, n in grid:
        q = embedding_quality_score(d, n)
        assert 0.0 <= q <= 1.0
        assert embedding_quality_score(d + 0.01, n) > q or q == 1.0
        assert embedding_quality_score(d, n + 0.5) > q or q == 1.0


def test_edge_inputs() -> None:
    assert embedding_quality_score(None, 12.0) == embedding_quality_score(
        UNSCORED_DETECTOR_INPUT, 12.0
    )
    assert embedding_quality_score(0.9, float("nan")) == 0.0
    assert embedding_quality_score(0.9, 0.0) < 1e-30  # a network that gave nothing
    assert embedding_quality_score(1.0, 1e30) == 1.0


class NormFake(FakeEmbedder):
    """The fake embedder, also reporting a raw norm per face: ``norm`` for every face."""

    def __init__(self, norm: float) -> None:
        super().__init__()
        self.norm = norm
        self.batches = 0

    def embed_with_norms(
        self, image: ImageArray, faces: Sequence[Face]
    ) -> tuple[FloatArray, FloatArray]:
        return self.embed(image, faces), np.full(len(faces), self.norm, np.float32)

    def embed_many_with_norms(
        self, items: Sequence[tuple[ImageArray, Sequence[Face]]]
    ) -> list[tuple[FloatArray, FloatArray]]:
        self.batches += 1
        return [self.embed_with_norms(image, faces) for image, faces in items]


@pytest.fixture
def norm_pipeline() -> Pipeline:
    return Pipeline(detector=FakeDetector(), embedder=NormFake(norm=9.0))


def test_the_fake_is_a_norm_reporting_embedder() -> None:
    assert isinstance(NormFake(1.0), NormReportingEmbedder)
    assert not isinstance(FakeEmbedder(), NormReportingEmbedder)


def _expected(face: Face) -> float:
    return embedding_quality_score(face.score if face.score > 0 else None, 9.0)


def test_embedded_faces_get_the_embedding_score(norm_pipeline: Pipeline) -> None:
    image = synthetic_photo([1, 2])
    detected = norm_pipeline.detect(image)
    embedded = norm_pipeline.analyze(image)
    assert len(detected) == len(embedded) == 2
    for before, after in zip(detected, embedded, strict=True):
        assert before.quality is not None and after.quality is not None
        # detection alone keeps the detector-only score; embedding replaces it
        assert before.quality.score == quality_score(
            face_px=0, sharpness=0, brightness=0, yaw=0, pitch=0, detector_score=before.score
        )
        assert after.quality.score == pytest.approx(_expected(after))
        assert after.quality.score != pytest.approx(before.quality.score)
        # the measurements and issues are those of the detected face
        assert after.quality.issues == before.quality.issues
        assert after.quality.sharpness == before.quality.sharpness


def test_every_embedding_path_rescores(norm_pipeline: Pipeline, photo_of) -> None:  # type: ignore[no-untyped-def]
    paths = [photo_of(1), photo_of(2), photo_of(1, 2)]
    subjects = list(norm_pipeline.iter_subjects(paths))  # the batched path
    assert norm_pipeline.embedder.batches >= 1  # type: ignore[attr-defined]
    for face in subjects:
        assert isinstance(face, Face) and face.quality is not None
        assert face.quality.score == pytest.approx(_expected(face))
    chosen = norm_pipeline.choose_face(paths[2], 1).face
    assert chosen.quality is not None and chosen.quality.score == pytest.approx(_expected(chosen))
    pair = norm_pipeline.verify_faces(paths[0], paths[2], search=True)
    for face in (pair.a.face, pair.b.face):
        assert face.quality is not None and face.quality.score == pytest.approx(_expected(face))
    assert pair.verification.quality == pytest.approx(
        min(_expected(pair.a.face), _expected(pair.b.face))
    )


def test_faces_without_quality_stay_without(norm_pipeline: Pipeline) -> None:
    image = synthetic_photo([1])
    faces = norm_pipeline.find_faces(image)
    (embedded,) = norm_pipeline.embed_faces(image, faces)
    assert embedded.quality is None and embedded.embedding is not None


def test_an_embedder_without_norms_keeps_the_detector_score(fake_pipeline: Pipeline) -> None:
    image = synthetic_photo([1])
    (detected,) = fake_pipeline.detect(image)
    (embedded,) = fake_pipeline.analyze(image)
    assert detected.quality is not None and embedded.quality is not None
    assert embedded.quality.score == detected.quality.score
