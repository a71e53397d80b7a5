"""Landmark refinement (:mod:`faceindex.detection.refine`): the detector run again on the
face's region, at three sizes and mirrored, and the points averaged. A fake detector
whose points are all off by the same amount to the right (in whatever image it is given)
shows the mirrored runs cancelling that bias, which only holds when the mirrored points
are mapped back right (coordinates and the order of eyes and mouth corners)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from faceindex.detection.refine import SIDES, refine_landmarks
from faceindex.pipeline import Pipeline, crop_fallback_face
from faceindex.testing.fakes import FakeDetector, FakeEmbedder, frontal_landmarks
from faceindex.types import BBox, Face, ImageArray, Landmarks, LandmarkScheme

#: How far right of the truth the biased detector puts every point, in face widths.
BIAS = 0.08


class BiasedDetector(FakeDetector):
    """The fake detector, with every point moved right by :data:`BIAS` face widths."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def detect(self, image: ImageArray) -> tuple[Face, ...]:
        self.calls += 1
        out = []
        for face in super().detect(image):
            marks = frontal_landmarks(face.bbox).points + np.array([BIAS * face.bbox.width, 0])
            landmarks = Landmarks(marks.astype(np.float32), LandmarkScheme.FIVE_POINT)
            out.append(dataclasses.replace(face, landmarks=landmarks))
        return tuple(out)


def _photo(box: tuple[int, int, int, int], size: tuple[int, int] = (300, 400)) -> ImageArray:
    """A grey photo with one textured 'face' (a blob the fake detector finds) at ``box``."""
    image = np.full((*size, 3), 128, np.uint8)
    x1, y1, x2, y2 = box
    rng = np.random.default_rng(0)
    image[y1:y2, x1:x2] = rng.integers(0, 100, (y2 - y1, x2 - x1, 3), dtype=np.uint8)
    return image


def _error(face: Face, truth: BBox) -> np.ndarray:
    """Each point's distance from where it belongs, in face widths."""
    assert face.landmarks is not None
    diff = face.landmarks.points - frontal_landmarks(truth).points
    return np.linalg.norm(diff, axis=1) / truth.width


def test_mirrored_runs_cancel_a_detectors_bias() -> None:
    detector = BiasedDetector()
    image = _photo((150, 80, 250, 200))
    (face,) = detector.detect(image)
    truth = BBox(150, 80, 250, 200)
    assert np.allclose(_error(face, truth), BIAS, atol=1e-3)
    refined = refine_landmarks(detector, image, face)
    # three sizes as they are (+BIAS), three mirrored (-BIAS), and the first (+BIAS):
    # the mean is off by BIAS / 7, give or take the resizing of the blob's edges
    assert np.all(_error(refined, truth) < BIAS / 7 + 0.01)
    assert detector.calls == 1 + 2 * len(SIDES)
    # everything but the points is the face as it was
    assert refined.bbox == face.bbox and refined.score == face.score
    assert refined.landmarks is not None
    assert refined.landmarks.scheme is LandmarkScheme.FIVE_POINT
    assert refined.landmarks.points.dtype == np.float32


def test_faces_at_the_photos_edge() -> None:
    detector = BiasedDetector()
    # (the fake detector takes the top-left pixel for the background: no face there)
    for box in ((0, 100, 90, 210), (310, 190, 400, 300)):
        image = _photo(box)
        (face,) = detector.detect(image)
        refined = refine_landmarks(detector, image, face)
        assert np.all(_error(refined, BBox(*box)) < BIAS / 7 + 0.02)


def test_other_faces_in_the_region_are_not_taken_for_it() -> None:
    detector = BiasedDetector()
    image = _photo((100, 100, 200, 220))
    image[100:160, 205:260] = 30  # a second, smaller blob within the first one's region
    face = next(f for f in detector.detect(image) if f.bbox.width == 100)
    refined = refine_landmarks(detector, image, face)
    assert np.all(_error(refined, BBox(100, 100, 200, 220)) < BIAS / 7 + 0.01)


def test_faces_it_cannot_refine_are_returned_as_they_are() -> None:
    image = _photo((150, 80, 250, 200))
    box = BBox(150, 80, 250, 200)
    detector = BiasedDetector()
    no_points = Face(bbox=box, score=0.9)
    assert refine_landmarks(detector, image, no_points) is no_points
    dlib_points = Face(
        bbox=box,
        score=0.9,
        landmarks=Landmarks(np.zeros((5, 2), np.float32), LandmarkScheme.DLIB_5),
    )
    assert refine_landmarks(detector, image, dlib_points) is dlib_points
    assert detector.calls == 0
    tiny = Face(bbox=BBox(2, 2, 6, 6), score=0.9, landmarks=frontal_landmarks(BBox(2, 2, 6, 6)))
    assert refine_landmarks(detector, image, tiny) is tiny
    # where the detector finds nothing again, the first points stay
    nothing = _photo((150, 80, 250, 200))
    face = Face(bbox=BBox(10, 10, 60, 60), score=0.9, landmarks=frontal_landmarks(box))
    assert refine_landmarks(detector, nothing, face) is face


def test_the_pipeline_embeds_and_returns_refined_faces() -> None:
    image = _photo((150, 80, 250, 200))
    on = Pipeline(detector=BiasedDetector(), embedder=FakeEmbedder())
    off = Pipeline(detector=BiasedDetector(), embedder=FakeEmbedder(), landmark_refinement=False)
    truth = BBox(150, 80, 250, 200)
    (refined,) = on.analyze(image)
    (plain,) = off.analyze(image)
    assert np.all(_error(refined, truth) < BIAS / 7 + 0.01)
    assert np.allclose(_error(plain, truth), BIAS, atol=1e-3)
    assert refined.embedding is not None and plain.embedding is not None
    [(batched,)] = on.embed_photos([(image, on.detect(image))])
    assert batched.landmarks is not None and refined.landmarks is not None
    assert np.allclose(batched.landmarks.points, refined.landmarks.points)
    # a crop-fallback face keeps the template's points: no detector found it
    crop = np.random.default_rng(1).integers(0, 255, (112, 112, 3), dtype=np.uint8)
    fallback = crop_fallback_face(crop)
    detector = BiasedDetector()
    pipeline = Pipeline(detector=detector, embedder=FakeEmbedder())
    (kept,) = pipeline.embed_faces(crop, [fallback])
    assert kept.landmarks is fallback.landmarks and detector.calls == 0


def test_a_restored_face_is_refined_in_its_restored_region() -> None:
    """A soft face is embedded again from its sharpened region (faceindex.quality.restore);
    there too it is aligned from refined points: 1 + 2 x SIDES detections in the region."""
    import cv2

    from faceindex.quality import assess

    image = _photo((150, 80, 250, 200))
    image = np.ascontiguousarray(cv2.GaussianBlur(image, (0, 0), 3.0))
    image[:, :] = np.where(image == image[0, 0], 128, image)  # a flat background again
    for refining, extra in ((True, 2 * len(SIDES)), (False, 0)):
        detector = BiasedDetector()
        pipeline = Pipeline(detector=detector, embedder=_NormFake(), landmark_refinement=refining)
        (face,) = detector.detect(image)
        face = dataclasses.replace(face, quality=assess(image, face))
        assert face.quality is not None and face.quality.sharpness < 30
        detector.calls = 0
        pipeline.embed_faces(image, [face])
        assert detector.calls == extra + 1 + extra  # the photo's region; the restored one


class _NormFake(FakeEmbedder):
    """The fake embedder, reporting a norm of 1 for every face (a NormReportingEmbedder,
    so that the pipeline restores soft faces)."""

    def embed_with_norms(
        self, image: ImageArray, faces: Sequence[Face]
    ) -> tuple[np.ndarray, np.ndarray]:
        return self.embed(image, faces), np.ones(len(faces), np.float32)

    def embed_many_with_norms(
        self, items: Sequence[tuple[ImageArray, Sequence[Face]]]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        return [self.embed_with_norms(image, faces) for image, faces in items]
