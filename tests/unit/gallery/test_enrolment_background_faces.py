"""Enrolment photos with background faces, on the fake backends: a photo whose subject
clearly dominates (size and centrality) enrols that face and reports the others as
ignored; a photo of people of similar prominence stays ``several_faces`` (real photos:
tests/integration/test_crop_and_background_faces.py)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from faceindex.gallery import EnrolStatus, Gallery, open_gallery
from faceindex.gallery.enrolment import DOMINANCE_RATIO, dominant_face, prominence
from faceindex.pipeline import Pipeline
from faceindex.testing import FakeDetector, synthetic_photo
from faceindex.testing.synthetic import BACKGROUND
from faceindex.types import BBox, Face, IdentDecision, ImageArray

W, H = 640, 480


def face_patch(person: int, side: int) -> ImageArray:
    """``person``'s synthetic face as a ``side`` x ``side`` square (nearest-neighbour resize
    keeps the texture and never makes the background colour)."""
    import cv2

    photo = synthetic_photo([person])
    (face,) = FakeDetector().detect(photo)
    b = face.bbox
    crop = np.ascontiguousarray(photo[int(b.y1) : int(b.y2), int(b.x1) : int(b.x2)])
    out = cv2.resize(crop, (side, side), interpolation=cv2.INTER_NEAREST)
    return np.asarray(out, dtype=np.uint8)


def compose(faces: Sequence[tuple[int, int, int, int]]) -> ImageArray:
    """A 640x480 photo with a face per ``(person, side, centre_x, centre_y)``."""
    image = np.empty((H, W, 3), np.uint8)
    image[:] = BACKGROUND
    for person, side, cx, cy in faces:
        x, y = cx - side // 2, cy - side // 2
        image[y : y + side, x : x + side] = face_patch(person, side)
    return image


@pytest.fixture()
def gallery(tmp_path: Path, fake_pipeline: Pipeline) -> Iterator[Gallery]:
    with open_gallery(tmp_path / "g.db", pipeline=fake_pipeline) as g:
        yield g


def test_the_subject_is_enrolled_and_background_faces_ignored(gallery: Gallery) -> None:
    # Person 1 large in the middle; person 2 smaller, at the side.
    photo = compose([(1, 200, 320, 240), (2, 100, 560, 120)])
    (outcome,) = gallery.enroll("Ada", [photo]).outcomes
    assert outcome.status is EnrolStatus.ACCEPTED
    assert outcome.flags == ("ignored_faces:1",) and outcome.template_id is not None
    (ada,) = gallery.identify(synthetic_photo([1], variant=2))
    assert ada.decision is IdentDecision.IDENTIFIED and ada.person is not None
    assert ada.person.name == "Ada"
    (other,) = gallery.identify(synthetic_photo([2], variant=2))
    assert other.person is None  # the background face was not enrolled
    (template,) = gallery.templates("Ada")
    assert template.bbox is not None and template.bbox.as_list() == [220.0, 140.0, 420.0, 340.0]


def test_centrality_picks_the_subject_over_a_larger_face_at_the_edge(gallery: Gallery) -> None:
    photo = compose([(1, 150, 330, 250), (2, 170, 95, 95), (3, 120, 560, 400)])
    (outcome,) = gallery.enroll("Ada", [photo]).outcomes
    assert outcome.status is EnrolStatus.ACCEPTED and outcome.flags == ("ignored_faces:2",)
    (ada,) = gallery.identify(synthetic_photo([1], variant=1))
    assert ada.person is not None and ada.person.name == "Ada"


@pytest.mark.parametrize(
    "layout",
    [
        [(1, 150, 200, 240), (2, 140, 440, 240)],  # side by side, similar sizes
        [(1, 90, 320, 240), (2, 80, 420, 240)],  # central, a neighbour of nearly its size
        [(1, 150, 160, 240), (2, 150, 480, 240), (3, 60, 600, 440)],
    ],
)
def test_ambiguous_photos_stay_rejected(gallery: Gallery, layout: list[tuple[int, ...]]) -> None:
    photo = compose([(p, s, x, y) for p, s, x, y in layout])
    assert len(FakeDetector().detect(photo)) == len(layout)
    (outcome,) = gallery.enroll("Ada", [photo]).outcomes
    assert (outcome.status, outcome.reasons) == (EnrolStatus.REJECTED, ("several_faces",))
    assert outcome.template_id is None


def test_a_dominant_face_still_passes_the_quality_gate(gallery: Gallery) -> None:
    dark = compose([(1, 200, 320, 240), (2, 100, 560, 120)])
    dark[140:340, 220:420] //= 8  # the subject's face only
    (outcome,) = gallery.enroll("Ada", [dark]).outcomes
    assert outcome.status is EnrolStatus.REJECTED and "too_dark" in outcome.reasons
    assert outcome.flags == ("ignored_faces:1",)


def _face(x1: float, y1: float, side: float) -> Face:
    return Face(bbox=BBox(x1, y1, x1 + side, y1 + side), score=0.9)


def test_prominence_and_the_dominance_rule() -> None:
    centred = _face(270, 190, 100)
    assert prominence(centred, W, H) == pytest.approx(100 * 100)
    corner = _face(0, 0, 100)  # its centre 0.75 of the half-diagonal away
    assert prominence(corner, W, H) < 0.1 * prominence(centred, W, H)
    assert dominant_face([], W, H) is None
    assert dominant_face([corner], W, H) is corner  # a lone face needs no dominance
    assert dominant_face([corner, centred], W, H) is centred
    twin = _face(370, 190, 100)  # same size, 100 px to the right
    assert dominant_face([centred, twin], W, H) is None
    # The threshold is the ratio of prominences: just under it is ambiguous.
    side = (prominence(centred, W, H) / DOMINANCE_RATIO) ** 0.5
    near = _face(320 - side / 2, 240 - side / 2, side * 1.01)
    assert dominant_face([centred, near], W, H) is None
    small = _face(320 - side / 2, 240 - side / 2, side * 0.99)
    assert dominant_face([centred, small], W, H) is centred
