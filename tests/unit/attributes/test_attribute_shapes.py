"""dlib's landmarks shared between the attribute backends: the 68 points predicted once
per call, and the five points of dlib's chips taken from them (no model is loaded here)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from faceindex.attributes import Attribute, FaceAttributes
from faceindex.attributes import analyzer as analyzer_module
from faceindex.attributes.analyzer import FaceAnalyzer
from faceindex.attributes.shapes import FIVE_FROM_68, DlibShapes
from faceindex.types import BBox, Face, ImageArray, Landmarks, LandmarkScheme

IMAGE = np.zeros((200, 200, 3), np.uint8)


def _face(scheme: LandmarkScheme | None = None) -> Face:
    marks = None
    if scheme is LandmarkScheme.DLIB_68:
        marks = Landmarks(np.arange(136, dtype=np.float32).reshape(68, 2), scheme)
    elif scheme is LandmarkScheme.FIVE_POINT:
        pts = np.array([[80, 90], [120, 90], [100, 110], [85, 130], [115, 130]], np.float32)
        marks = Landmarks(pts, scheme)
    return Face(bbox=BBox(60, 60, 140, 150), score=0.9, landmarks=marks)


def test_chips_take_the_five_points_out_of_the_68() -> None:
    shapes = DlibShapes()
    face = _face(LandmarkScheme.DLIB_68)
    shape = shapes.shape5(IMAGE, face)
    got = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
    assert face.landmarks is not None
    np.testing.assert_array_equal(got, face.landmarks.points[list(FIVE_FROM_68)])
    # dlib's order: the subject's left eye (outer, inner), right eye (outer, inner), nose
    assert FIVE_FROM_68 == (45, 42, 36, 39, 33)


def test_faces_that_carry_68_points_are_not_predicted_again() -> None:
    shapes = DlibShapes()
    face = _face(LandmarkScheme.DLIB_68)
    assert shapes.with_68(IMAGE, [face]) == (face,)
    assert shapes.with_68(IMAGE, []) == ()


class Recorder:
    """A backend that records the faces it was given."""

    def __init__(self, name: str, provides: set[Attribute], dlib_points: int | None) -> None:
        self.name = name
        self.provides = frozenset(provides)
        if dlib_points is not None:
            self.dlib_points = dlib_points
        self.seen: list[tuple[Face, ...]] = []

    def warm_up(self) -> None:
        pass

    def estimate(
        self,
        image: ImageArray,
        faces: Sequence[Face],
        attributes: frozenset[Attribute] | None = None,
    ) -> tuple[FaceAttributes, ...]:
        self.seen.append(tuple(faces))
        return tuple(FaceAttributes() for _ in faces)


@pytest.fixture
def recorders(monkeypatch: pytest.MonkeyPatch) -> dict[str, Recorder]:
    made = {
        "dlib-68-geometry": Recorder("dlib-68-geometry", {Attribute.POSE, Attribute.EYES}, 68),
        "dlib-age-gender": Recorder("dlib-age-gender", {Attribute.AGE, Attribute.GENDER}, 5),
        "fer-mini-xception": Recorder("fer-mini-xception", {Attribute.EXPRESSION}, None),
    }
    monkeypatch.setattr(analyzer_module, "_build", lambda name, shapes: made[name])
    return made


@pytest.fixture
def with_68_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []

    def fake_with_68(
        self: DlibShapes, image: ImageArray, faces: Sequence[Face]
    ) -> tuple[Face, ...]:
        calls.append(len(faces))
        return tuple(_face(LandmarkScheme.DLIB_68) for _ in faces)

    monkeypatch.setattr(DlibShapes, "with_68", fake_with_68)
    return calls


def test_one_landmark_run_serves_every_dlib_backend(
    recorders: dict[str, Recorder], with_68_calls: list[int]
) -> None:
    face = _face(LandmarkScheme.FIVE_POINT)
    FaceAnalyzer().estimate(IMAGE, [face, face])
    assert with_68_calls == [2]
    for name in ("dlib-68-geometry", "dlib-age-gender"):
        (faces,) = recorders[name].seen
        assert [f.landmarks.scheme for f in faces if f.landmarks] == [LandmarkScheme.DLIB_68] * 2
    # the expression net is given the detector's faces as they were
    assert recorders["fer-mini-xception"].seen == [(face, face)]


@pytest.mark.parametrize(
    "asked",
    [
        {Attribute.AGE, Attribute.GENDER, Attribute.EXPRESSION},
        {Attribute.POSE, Attribute.EYES},
        {Attribute.AGE},
    ],
)
def test_a_single_dlib_backend_runs_its_own_predictor(
    recorders: dict[str, Recorder], with_68_calls: list[int], asked: set[Attribute]
) -> None:
    face = _face(LandmarkScheme.FIVE_POINT)
    FaceAnalyzer(asked).estimate(IMAGE, [face])
    assert with_68_calls == []
    seen = [r.seen for r in recorders.values() if r.seen]
    assert seen and all(s == [(face,)] for s in seen)


def test_asking_for_fewer_attributes_of_a_full_analyzer(
    recorders: dict[str, Recorder], with_68_calls: list[int]
) -> None:
    """An analyzer built for everything, asked only for pose: no shared run."""
    face = _face(LandmarkScheme.FIVE_POINT)
    FaceAnalyzer().estimate(IMAGE, [face], {Attribute.POSE, Attribute.EXPRESSION})
    assert with_68_calls == []
    assert recorders["dlib-age-gender"].seen == []
    assert recorders["dlib-68-geometry"].seen == [(face,)]
