"""Real models: a tight aligned crop the detector misses is still a face (the pipeline's
crop fallback), and an enrolment photo with background faces enrols its subject unless
the photo is ambiguous (two_people.jpg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceindex.alignment import arcface_crop
from faceindex.errors import NoFaceError
from faceindex.gallery import EnrolStatus, open_gallery
from faceindex.io.image import load_image
from faceindex.pipeline import Pipeline, is_crop_fallback
from faceindex.types import Face, ImageArray


class MissesCrops:
    """The real detector, blind to images of at most 160 px a side (as some detectors are
    to tight crops: dlib's HOG misses 51 of glint6's 360)."""

    def __init__(self, inner: Pipeline) -> None:
        self.inner = inner.detector
        self.name = f"{self.inner.name}-misses-crops"

    def warm_up(self) -> None:
        self.inner.warm_up()

    def detect(self, image: ImageArray) -> tuple[Face, ...]:
        return () if max(image.shape[:2]) <= 160 else self.inner.detect(image)


@pytest.fixture()
def obama_crop(pipeline: Pipeline, fixtures_dir: Path) -> ImageArray:
    """obama.jpg aligned to the 112x112 ArcFace crop, then shifted 3 px and blurred a
    little: a tight crop as a dataset would hold it, not exactly the embedder's own."""
    import cv2

    image = load_image(fixtures_dir / "obama.jpg")
    face = pipeline.detector.detect(image)[0]
    assert face.landmarks is not None
    crop = arcface_crop(image, face.landmarks, size=112)
    shift = np.array([[1, 0, 3], [0, 1, 2]], dtype=np.float32)
    shifted = cv2.warpAffine(crop, shift, (112, 112), borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(cv2.GaussianBlur(shifted, (0, 0), 0.8), dtype=np.uint8)


def test_a_crop_the_detector_misses_is_a_face_and_verifies(
    pipeline: Pipeline, obama_crop: ImageArray, fixtures_dir: Path
) -> None:
    blind = Pipeline(detector=MissesCrops(pipeline), embedder=pipeline.embedder)
    assert blind.detector.detect(obama_crop) == ()
    (face,) = blind.detect(obama_crop)
    assert is_crop_fallback(face) and face.score == 0.0
    assert face.bbox.as_list() == [0.0, 0.0, 112.0, 112.0]
    assert blind.verify(obama_crop, fixtures_dir / "obama2.jpg").match
    assert not blind.verify(obama_crop, fixtures_dir / "biden.jpg").match
    # The whole-crop face embeds like the detected one (the fallback's alignment is right).
    detected = pipeline.subject_face(obama_crop)
    assert not is_crop_fallback(detected)
    fallback = blind.subject_face(obama_crop)
    assert detected.embedding is not None and fallback.embedding is not None
    assert float(np.dot(detected.embedding.vector, fallback.embedding.vector)) > 0.9


def test_no_face_is_still_no_face(pipeline: Pipeline) -> None:
    blind = Pipeline(detector=MissesCrops(pipeline), embedder=pipeline.embedder)
    blank = np.full((480, 640, 3), 200, np.uint8)
    for p in (pipeline, blind):
        assert p.detect(blank) == ()
        with pytest.raises(NoFaceError):
            p.subject_face(blank)


def test_enrolment_ignores_background_faces_but_not_two_people(
    pipeline: Pipeline, fixtures_dir: Path, tmp_path: Path
) -> None:
    # obama.jpg with biden.jpg at 60% pasted in the bottom-left corner: Obama dominates.
    photo = np.array(load_image(fixtures_dir / "obama.jpg"))
    small = Image.fromarray(load_image(fixtures_dir / "biden.jpg"))
    small = small.resize((small.width * 6 // 10, small.height * 6 // 10))
    patch = np.asarray(small)[: photo.shape[0] // 2]
    photo[-patch.shape[0] :, : patch.shape[1]] = patch
    assert len(pipeline.detect(photo)) == 2
    with open_gallery(tmp_path / "g.db", pipeline=pipeline) as gallery:
        report = gallery.enroll(
            "Barack Obama", [photo, fixtures_dir / "two_people.jpg"], sources=["group", "two"]
        )
        subject, two = report.outcomes
        assert subject.status is EnrolStatus.ACCEPTED and "ignored_faces:1" in subject.flags
        assert (two.status, two.reasons) == (EnrolStatus.REJECTED, ("several_faces",))
        assert gallery.verify_person(fixtures_dir / "obama2.jpg", "Barack Obama").match
        assert not gallery.verify_person(fixtures_dir / "biden.jpg", "Barack Obama").match
